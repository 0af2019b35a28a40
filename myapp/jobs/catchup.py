"""Catch-up: when the cron container starts, a job whose last scheduled time passed while
no cron container ran it runs once, if that time is recent enough (within one interval of
its schedule, at most a day) and the job was already in the crontab then. The cron
container's program starts each through `jobs run` (myapp/sidecar/catch_up.py)."""
from datetime import timedelta

from django.utils import timezone

from myapp.jobs import history, schedule

MAX_WINDOW = timedelta(days=1)


def missed(now=None):
    """(CrontabLine, the tick it missed) for each job to catch up, in crontab order."""
    now = now or timezone.now()
    load, crontab = schedule.current()
    if crontab is None:
        return []
    lines = [line for line in crontab.jobs().values() if line.spec.catch_up]
    first_seen = schedule.first_seen([line.name for line in lines])
    due = []
    for line in lines:
        # The last tick before this cron container loaded its crontab: later ones are its own.
        tick = line.schedule.previous_before(load.loaded_at)
        if tick is None or line.name not in first_seen or first_seen[line.name] > tick:
            continue  # never scheduled, or not yet in the crontab at that time
        following = line.schedule.next_after(tick)
        window = min(following - tick, MAX_WINDOW) if following else MAX_WINDOW
        if now - tick <= window and not history.ran_since(line.name, tick):
            due.append((line, tick))
    return due
