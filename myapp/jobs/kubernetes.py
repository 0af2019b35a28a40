"""The crontab as Kubernetes CronJobs: what `jobs export --kubernetes` writes for the Helm
chart under deploy/ (its templates turn each entry into a CronJob running the same image and
the same `python manage.py jobs run ...` command).

Kubernetes schedules take the usual five fields or an @shorthand, in the CronJob's time
zone; a line with seconds or a year cannot be expressed and is refused. Each entry carries
what Kubernetes needs to behave as the cron container does: Forbid a second run while one
is active (the runtime's lock holds anyway), start a missed run only within the job's
catch-up window, and stop a Job a little past the runtime's own timeout and kill grace.
"""
import hashlib
import shlex
from datetime import datetime, timedelta

import yaml
from django.core.management.base import CommandError
from django.utils.text import slugify

from myapp.jobs.catchup import MAX_WINDOW
from myapp.jobs.crontab import parse_crontab
from myapp.jobs.options import check_command
from myapp.supervision.bounded import KILL_GRACE

# Past the runtime's timeout and its SIGTERM-to-SIGKILL grace, a margin for start-up before
# Kubernetes stops the Job itself.
DEADLINE_MARGIN = 60
# A line with --no-catch-up: start within a minute of the tick, or not at all.
NO_CATCH_UP_DEADLINE = 60
# CronJob names are at most 52 characters; the chart prefixes ours with the release's name.
MAX_NAME = 30
# Ticks from here on give a line's shortest interval, so that the export is the same each day.
REFERENCE = datetime(2026, 1, 1)


class ExportError(Exception):
    """The crontab cannot be exported; the message says which line and why, in one line."""


def export(crontab_text):
    """The YAML the chart reads: the crontab itself and one entry per line."""
    crontab = parse_crontab(crontab_text)
    problems = crontab.problems()
    if problems:
        line, reason = problems[0]
        raise ExportError(f'line {line.number}: {reason}: {line.text}')
    jobs, names = [], {}
    for line in crontab.lines:
        fields = str(line.schedule).split()
        if len(fields) not in (1, 5):
            extra = 'a year' if len(fields) == 6 else 'seconds and a year'
            raise ExportError(f'line {line.number}: Kubernetes CronJobs take five fields or an @shorthand, '
                              f'not {len(fields)} ({extra}): {line.text}')
        try:
            check_command(line.spec.argv)
        except CommandError as error:
            raise ExportError(f'line {line.number}: {error}: {line.text}')
        name = _name(line.name)
        if name in names:
            raise ExportError(f'line {line.number}: its job name makes the same CronJob name as line '
                              f'{names[name]} ({name}); give one of them another --name')
        names[name] = line.number
        jobs.append({
            'name': name,
            'job': line.name,
            'schedule': str(line.schedule),
            'command': shlex.split(line.command),
            'startingDeadlineSeconds': _catch_up_window(line),
            'activeDeadlineSeconds': int(line.spec.timeout + KILL_GRACE + DEADLINE_MARGIN),
        })
    # KEY=VALUE lines: supercronic gives them to every job; so do the CronJobs.
    environment = {key: value for key, value in crontab.environment.items() if key != 'CRON_TZ'}
    document = {'timeZone': crontab.timezone, 'environment': environment, 'crontab': crontab_text, 'jobs': jobs}
    header = ('# Written by `python manage.py jobs export --kubernetes` from ./crontab: do not edit.\n'
              '# Edit ./crontab, then run the command again (a test fails while they disagree).\n')
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=200)


def _name(job_name):
    slug = slugify(job_name.replace('_', '-'))
    if len(slug) <= MAX_NAME:
        return slug
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:6]
    return f'{slug[:MAX_NAME - 7].rstrip("-")}-{digest}'


def _catch_up_window(line):
    """Seconds after a tick within which a missed run still starts: as catch-up in the cron
    container, the job's shortest interval, at most a day."""
    if not line.spec.catch_up:
        return NO_CATCH_UP_DEADLINE
    schedule = line.schedule
    tick = schedule.next_after(REFERENCE.replace(tzinfo=schedule.zone))
    shortest = MAX_WINDOW
    for _ in range(50):
        following = schedule.next_after(tick)
        if following is None:
            break
        shortest = min(shortest, following - tick)
        tick = following
    return int(max(shortest, timedelta(seconds=NO_CATCH_UP_DEADLINE)).total_seconds())


class _Dumper(yaml.SafeDumper):
    """YAML a person can read in a diff: the crontab as a block, each command on one line."""


def _represent_str(dumper, text):
    style = '|' if '\n' in text else None
    return dumper.represent_scalar('tag:yaml.org,2002:str', text, style=style)


def _represent_list(dumper, items):
    flow = all(isinstance(item, str) for item in items)
    return dumper.represent_sequence('tag:yaml.org,2002:seq', items, flow_style=flow)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)
