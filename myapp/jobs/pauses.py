"""Pausing a job without editing the schedule (`jobs pause`, or Pause on the Jobs page): its
scheduled and catch-up runs are recorded as skipped, naming the pause; it is not overdue and
sends no notification while paused; Run now and a run by hand still run it. A pause with an
end ends by itself; resuming removes it."""
from django.db.models import Q
from django.utils import timezone

from myapp.models import JobPause
from myapp.timing import format_local


def _in_force(now):
    return JobPause.objects.filter(resumed_at=None).filter(Q(until=None) | Q(until__gt=now))


def active(now=None):
    """{job name: JobPause} of the pauses in force now."""
    return {pause.name: pause for pause in _in_force(now or timezone.now())}


def of(name, now=None):
    """The pause of the job name in force now, or None."""
    return _in_force(now or timezone.now()).filter(name=name).first()


def in_force(pause, now):
    """Whether the pause holds at now (the rule _in_force asks the database)."""
    return pause.resumed_at is None and (pause.until is None or pause.until > now)


def ended_at(pause, now):
    """When the pause ended (resumed, or its end passed by now), or None while it holds."""
    if pause.resumed_at:
        return pause.resumed_at
    return pause.until if pause.until and pause.until <= now else None


def latest(names):
    """{job name: its latest JobPause, in force or ended}."""
    return {pause.name: pause for pause in JobPause.objects.filter(name__in=names)}


def pause(name, by, until=None, reason=''):
    """Pauses the job name (again: the new pause replaces the old one)."""
    pause, _ = JobPause.objects.update_or_create(name=name, defaults={
        'paused_by': by, 'paused_at': timezone.now(), 'until': until, 'reason': reason,
        'resumed_at': None, 'resumed_by': ''})
    return pause


def resume(name, by):
    """Resumes the job; False when it was not paused."""
    return bool(_in_force(timezone.now()).filter(name=name).update(resumed_at=timezone.now(), resumed_by=by))


def describe(pause):
    """`paused by pi at 2026-12-01 10:00 UTC until 2026-12-01 12:00 UTC: downtime`."""
    text = f'paused by {pause.paused_by} at {format_local(pause.paused_at)}'
    text += f' until {format_local(pause.until)}' if pause.until else ' until resumed'
    return text + (f': {pause.reason}' if pause.reason else '')
