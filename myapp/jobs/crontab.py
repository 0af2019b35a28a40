"""Reading a crontab as supercronic does, and computing its schedules with croniter.

supercronic takes the first of 7 fields (seconds, the usual five, a year), 6 (the usual
five and a year: not seconds!), 5, or 1 (`@hourly`) that parses as a schedule; the rest of
the line is the command, run by /bin/sh. `KEY=VALUE` lines set the jobs' environment;
CRON_TZ sets the time zone of every schedule (the cron container runs UTC unless it is set).
"""
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from django.core.management.base import CommandError

from myapp.jobs.options import spec_from_words

ENV_LINE = re.compile(r'^([^\s=]+)\s*=\s*(.*)$')
FIELD_COUNTS = (7, 6, 5, 1)
DEFAULT_TIMEZONE = 'UTC'
# supercronic's shorthands, as the usual five fields.
SHORTHANDS = {
    '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *',
    '@weekly': '0 0 * * 0', '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *',
}


class ScheduleError(Exception):
    """A schedule that cannot be computed; the message says why, in one line."""


class Schedule:
    """The times of one cron expression, as supercronic reads it, in a time zone."""

    def __init__(self, expression, timezone=DEFAULT_TIMEZONE):
        self.expression = expression
        self.zone = ZoneInfo(timezone)
        fields = expression.split()
        if len(fields) == 6:
            fields = ['0', *fields]  # supercronic's 6 fields are the usual five and a year
        self._croniter_expression = ' '.join(fields)
        try:
            croniter(self._croniter_expression, datetime.now(self.zone), second_at_beginning=True)
        except (CroniterError, ValueError, KeyError) as error:
            raise ScheduleError(f'cannot compute the schedule {expression!r}: {error}')

    def _iterate(self, start):
        return croniter(self._croniter_expression, start.astimezone(self.zone), second_at_beginning=True)

    def next_after(self, moment):
        """The first scheduled time strictly after moment, or None if there is none."""
        try:
            return self._iterate(moment).get_next(datetime)
        except CroniterError:
            return None

    def previous_before(self, moment):
        """The last scheduled time at or before moment, or None if there is none."""
        try:
            return self._iterate(moment).get_prev(datetime)
        except CroniterError:
            return None

    def __str__(self):
        return self.expression


@dataclass
class CrontabLine:
    number: int
    text: str
    schedule: Schedule | None = None
    command: str = ''
    spec: object = None       # the JobSpec when the command is `python manage.py jobs run ...`
    problem: str = ''         # why the line cannot be checked, if it cannot

    @property
    def name(self):
        return self.spec.name if self.spec else self.command


@dataclass
class Crontab:
    lines: list = field(default_factory=list)
    timezone: str = DEFAULT_TIMEZONE
    environment: dict = field(default_factory=dict)

    def jobs(self):
        """The lines that run through `jobs run`, by job name."""
        return {line.name: line for line in self.lines if line.spec}

    def problems(self):
        """(line, reason) for every line `jobs check` cannot vouch for."""
        found = [(line, line.problem) for line in self.lines if line.problem]
        seen = {}
        for line in self.lines:
            if line.spec and line.name in seen:
                found.append((line, f'runs the job {line.name!r} of line {seen[line.name]} again; '
                                    'give one of them its own --name'))
            seen.setdefault(line.name, line.number)
        return sorted(found, key=lambda item: item[0].number)


def parse_crontab(text):
    crontab = Crontab()
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip(' \t')
        if not line or line.startswith('#'):
            continue
        env = ENV_LINE.match(line)
        if env:
            crontab.environment[env.group(1)] = _unquote(env.group(2))
            continue
        entries.append((number, raw.strip()))
    crontab.timezone = crontab.environment.get('CRON_TZ') or DEFAULT_TIMEZONE
    try:
        ZoneInfo(crontab.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        crontab.lines = [CrontabLine(n, t, problem=f'unknown CRON_TZ {crontab.timezone!r}') for n, t in entries]
        return crontab
    crontab.lines = [_parse_job_line(number, text, crontab.timezone) for number, text in entries]
    return crontab


def _parse_job_line(number, text, timezone):
    words = text.split()
    for count in FIELD_COUNTS:
        if len(words) <= count:
            continue
        try:
            schedule = Schedule(' '.join(words[:count]), timezone)
        except ScheduleError:
            continue
        command = text.split(None, count)[count]
        line = CrontabLine(number, text, schedule, command)
        line.spec, line.problem = _job_spec(command)
        return line
    return CrontabLine(number, text, problem='cannot compute its schedule (no 7, 6, 5 or 1 leading fields '
                                            'croniter reads as supercronic does)')


def _job_spec(command):
    """(JobSpec, '') for `python manage.py jobs run ...`; (None, why not) otherwise."""
    try:
        words = shlex.split(command)
    except ValueError as error:
        return None, f'cannot read the command: {error}'
    manage = next((i for i, word in enumerate(words) if word.endswith('manage.py')), None)
    if manage is None or words[manage + 1:manage + 3] != ['jobs', 'run']:
        return None, 'does not run through `python manage.py jobs run`: its runs are not recorded or checked'
    try:
        return spec_from_words(words[manage + 3:]), ''
    except CommandError as error:
        return None, f'jobs run: {error}'


def _unquote(value):
    # As supercronic (and Vixie cron) do: one pair of matching quotes around the value goes.
    if len(value) > 1 and value[0] in '"\'' and value[-1] == value[0]:
        return value[1:-1]
    return value
