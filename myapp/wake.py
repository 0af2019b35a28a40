"""Waking the cron program when there is something for it: a Run now request or a queued
task stored. On PostgreSQL a NOTIFY on CHANNEL, which the program LISTENs to
(myapp/sidecar/wakeup.py), so that it sleeps while nothing happens instead of asking the
database every second; elsewhere (SQLite) nothing is sent and the program polls slowly."""
from django.db import connection
from django_tasks.backends.database.backend import DatabaseBackend
from django_tasks.signals import task_enqueued

CHANNEL = 'tom_wake'
RUN_NOW, TASK = 'run-now', 'task'


def can_listen(vendor=None):
    """Whether the database carries notifications."""
    return (vendor or connection.vendor) == 'postgresql'


def notify(what):
    """Tells a listening cron program (at commit, as NOTIFY is transactional)."""
    if can_listen():
        with connection.cursor() as cursor:
            cursor.execute('SELECT pg_notify(%s, %s)', [CHANNEL, what])


def _task_stored(sender, task_result, **kwargs):
    if issubclass(sender, DatabaseBackend):
        notify(TASK)


task_enqueued.connect(_task_stored, dispatch_uid='myapp.wake')
