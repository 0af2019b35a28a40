"""The schedule the cron container runs, as it recorded it in the database: the web
container and `jobs check` read it there instead of the cron container's files."""
import re
from functools import lru_cache

from django.db import transaction
from django.utils import timezone

from myapp.jobs.crontab import parse_crontab
from myapp.models import CrontabLoad, ScheduledJob
from myapp.supervision.liveness import this_host

BAD_LINE = re.compile(r"bad crontab line: '(.*)'")


def record_load(text):
    """Records text as the crontab now running; returns its parsed Crontab."""
    crontab = parse_crontab(text)
    now = timezone.now()
    with transaction.atomic():
        CrontabLoad.objects.create(loaded_at=now, host=this_host(), text=text, accepted=True)
        known = set(ScheduledJob.objects.filter(name__in=list(crontab.jobs())).values_list('name', flat=True))
        ScheduledJob.objects.bulk_create(
            [ScheduledJob(name=name, first_seen=now) for name in crontab.jobs() if name not in known])
    return crontab


def record_rejection(text, reason):
    """Records an edit the cron container refused, with the line it named and why."""
    bad_line = BAD_LINE.search(reason)
    return CrontabLoad.objects.create(
        loaded_at=timezone.now(), host=this_host(), text=text, accepted=False,
        bad_line=bad_line.group(1) if bad_line else '', reason=reason,
    )


def current():
    """(the CrontabLoad now running, its parsed Crontab), or (None, None) before any."""
    load = CrontabLoad.objects.filter(accepted=True).order_by('-loaded_at').first()
    return (load, parsed(load.text)) if load else (None, None)


@lru_cache(maxsize=8)
def parsed(text):
    """The crontab text parsed, once per text (readers ask at each page and check; the
    parsed Crontab is only read)."""
    return parse_crontab(text)


def rejection_since(load):
    """The latest edit rejected after load (the running schedule), if any."""
    rejected = CrontabLoad.objects.filter(accepted=False)
    if load is not None:
        rejected = rejected.filter(loaded_at__gt=load.loaded_at)
    return rejected.order_by('-loaded_at').first()


def first_seen(names):
    """{name: when a loaded crontab first had it}."""
    return dict(ScheduledJob.objects.filter(name__in=list(names)).values_list('name', 'first_seen'))


def line_of(name):
    """The line of the running crontab that runs the job name, or None."""
    _, crontab = current()
    return crontab.jobs().get(name) if crontab else None


def line_running_here(name):
    """The line that runs the job name in the crontab this host's cron container loaded
    last, or, on a host that loaded none (a Kubernetes job pod), in the running crontab.
    While replicas reload an edit one after the other, each still runs its own copy."""
    load = CrontabLoad.objects.filter(accepted=True, host=this_host()).order_by('-loaded_at').first()
    if load is None:
        return line_of(name)
    return parsed(load.text).jobs().get(name)
