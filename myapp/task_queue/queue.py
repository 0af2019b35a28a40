"""The queue of tasks in the database: what waits, taking the next task for a worker, and
queuing a failed task again."""
from django.conf import settings
from django.utils import timezone
from django_tasks import tasks
from django_tasks.backends.database.backend import DatabaseBackend
from django_tasks.backends.database.models import DBTaskResult
from django_tasks.backends.database.utils import exclusive_transaction

from myapp.models import TaskRecord

FAILED = {TaskRecord.Outcome.FAILED, TaskRecord.Outcome.TIMED_OUT, TaskRecord.Outcome.LOST}


def backend_names():
    """The aliases of TASKS that store tasks in the database: the worker runs the tasks of each."""
    return [alias for alias in settings.TASKS if isinstance(tasks[alias], DatabaseBackend)]


def ready():
    """Tasks waiting to run now, the first to run first: by priority, then oldest first."""
    return (DBTaskResult.objects.ready().filter(backend_name__in=backend_names())
            .order_by('-priority', 'enqueued_at'))


def running():
    return DBTaskResult.objects.running().filter(backend_name__in=backend_names())


def oldest_waiting():
    """The ready task that has waited longest, or None; `waiting_since` is when it was queued,
    or the time it was to run after (read among the first 200, as the worker takes them)."""
    rows = list(ready().only('id', 'task_path', 'enqueued_at', 'run_after')[:200])
    if not rows:
        return None
    for row in rows:
        row.waiting_since = waiting_since(row)
    return min(rows, key=lambda row: row.waiting_since)


def waiting_since(row):
    """Since when a task has waited: its queuing, or the time it was to run after."""
    return max(row.enqueued_at, row.run_after or row.enqueued_at)


def take(host, worker):
    """Claims the next ready task for worker, recording where it runs; None when none waits.
    The claim and its record are one transaction: a task is never taken twice."""
    with exclusive_transaction(DBTaskResult.objects.db):
        row = ready().get_locked()
        if row is None:
            return None
        row.claim()
        TaskRecord.objects.update_or_create(result=row, defaults={
            'host': host, 'worker': worker, 'heartbeat_at': timezone.now()})
    return row


def started(row, pid):
    TaskRecord.objects.filter(result=row).update(pid=pid)


class RetryRefused(Exception):
    pass


def retry(row, user):
    """Queues the task of a failed row again with the same arguments; keeps who asked, when,
    and which row it retries. Returns the new row."""
    record = TaskRecord.objects.filter(result=row).first()
    outcome = record.outcome if record and record.outcome else row.status.lower()  # ours, else django-tasks'
    if outcome not in FAILED:
        raise RetryRefused(f'task {row.pk} has not failed')
    try:
        task = row.task
    except (ImportError, AttributeError) as error:
        raise RetryRefused(f'task {row.task_path} can no longer be imported: {error}')
    result = task.enqueue(*row.args_kwargs['args'], **row.args_kwargs['kwargs'])
    TaskRecord.objects.update_or_create(result_id=result.id, defaults={
        'retry_of': row, 'retried_by': user, 'retried_at': timezone.now()})
    return DBTaskResult.objects.get(pk=result.id)


def arguments(row):
    """The task's arguments as a call would write them: `60000, None, target_id=3`."""
    args, kwargs = row.args_kwargs.get('args', []), row.args_kwargs.get('kwargs', {})
    return ', '.join([repr(value) for value in args] + [f'{key}={value!r}' for key, value in kwargs.items()])


def name(row):
    """The task's function name, read from its path: naming a task imports none of its code
    (the cron program would otherwise load every task's modules, astropy and all)."""
    return row.task_path.rsplit('.', 1)[-1]
