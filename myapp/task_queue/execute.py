"""One queued task, in the process of its own that the worker starts (`manage.py tasks run
ID`): the task called with its arguments, its result or exception written to its row as
django-tasks' own worker writes them. The worker decides the rest (timeout, outcome)."""
import logging

from django.core.exceptions import ValidationError
from django_tasks import ResultStatus
from django_tasks.backends.database.models import DBTaskResult
from django_tasks.signals import task_finished

logger = logging.getLogger(__name__)


class NotRunnable(Exception):
    pass


def run(row_id):
    """Runs the claimed task row_id; returns 0 when it succeeded, 1 when it raised."""
    try:
        row = DBTaskResult.objects.get(pk=row_id)
    except (DBTaskResult.DoesNotExist, ValidationError, ValueError):
        raise NotRunnable(f'no task {row_id}')
    if row.status != ResultStatus.RUNNING:
        raise NotRunnable(f'task {row_id} is {row.status.lower()}, not claimed by a worker')
    try:
        task = row.task
        result = row.task_result
        value = task.call(*result.args, **result.kwargs)
        # Inside the try, as django-tasks does: a value that JSON cannot hold fails the task.
        row.set_succeeded(value)
    except BaseException as error:  # the task's failure, whatever it is, is recorded
        row.set_failed(error)
        _finished(row)  # django-tasks' receiver logs the traceback of the exception being handled
        return 1
    _finished(row)
    return 0


def _finished(row):
    """django-tasks' task_finished signal, as its own worker sends it (receivers log, or count)."""
    try:
        task_finished.send(sender=type(row.task.get_backend()), task_result=row.task_result)
    except Exception:
        logger.exception('task %s: a task_finished receiver failed', row.pk)
