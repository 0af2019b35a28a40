"""How each task ended, in the TOM's words (succeeded, failed, timed out, lost), beside
django-tasks' own status: recorded once, counted, and found lost when its worker died."""
from django.db import transaction
from django.utils import timezone
from django_tasks import ResultStatus
from django_tasks.backends.database.models import DBTaskResult

from myapp.database import add_one
from myapp.models import TaskRecord, TaskRunCount
from myapp.supervision import liveness

Outcome = TaskRecord.Outcome


class TaskEnded(Exception):
    """The exception class recorded on a task that the worker ended (its timeout, its process
    gone, its worker lost): django-tasks' row says failed, and why, like any other failure."""


def error_line(row):
    """The one line saying why the task of a failed row failed: its exception's last line."""
    lines = [line for line in (row.traceback or '').strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ''


def outcome_of(row, exit_status, output_tail):
    """(outcome, error line) of a task whose process has ended with exit_status."""
    if row.status == ResultStatus.SUCCEEDED:
        if row.return_value is False:
            # TOM Toolkit's tasks (the ATLAS query) log their error and return False.
            return Outcome.FAILED, f'the task returned False: {_last_error(output_tail) or "no error logged"}'
        return Outcome.SUCCEEDED, ''
    if row.status == ResultStatus.FAILED:
        return Outcome.FAILED, error_line(row) or f'exit status {exit_status}'
    return Outcome.FAILED, f'its process ended with exit status {exit_status} before recording a result'


def _last_error(output_tail):
    """The last line of the output that says ERROR (a logged error), without its time stamp."""
    for line in reversed(output_tail.splitlines()):
        if 'ERROR' in line:
            return line[line.index('ERROR'):].strip()
    return ''


def finish(row_id, outcome, error='', output_tail='', duration=None):
    """Records the end of a task; a row still running is set failed with error. Returns
    False when the task had been recorded ended already (as lost, say)."""
    now = timezone.now()
    with transaction.atomic():
        if outcome != Outcome.SUCCEEDED:
            DBTaskResult.objects.filter(pk=row_id, status=ResultStatus.RUNNING).update(
                status=ResultStatus.FAILED, finished_at=now, return_value=None,
                exception_class_path=f'{TaskEnded.__module__}.{TaskEnded.__qualname__}', traceback=error)
        updated = TaskRecord.objects.filter(result_id=row_id, outcome='').update(
            outcome=outcome, error=error, output_tail=output_tail, duration=duration, heartbeat_at=now)
        if updated:
            row = DBTaskResult.objects.only('task_path').get(pk=row_id)
            _count(row.task_path, outcome)
    return bool(updated)


def heartbeat(worker, row_ids):
    """The worker's running tasks are alive: their heartbeat is now."""
    if row_ids:
        TaskRecord.objects.filter(worker=worker, result_id__in=row_ids, outcome='').update(
            heartbeat_at=timezone.now())


def mark_lost(worker=None, pid=None, now=None):
    """Records as lost (failed, "worker lost") the running tasks whose worker is gone: not
    heard from for LOST_AFTER (myapp/supervision/liveness.py), or, seen by worker, a worker of
    this host that is not alive (a cron container killed and started again). Returns the rows
    recorded lost."""
    now = now or timezone.now()
    running = TaskRecord.objects.filter(outcome='', result__status=ResultStatus.RUNNING).select_related('result')
    lost = []
    for record in running:
        if record.worker == worker:
            continue
        here = record.host == liveness.this_host()
        if silent(record, now) or (worker and here and not _alive_here(record.worker, pid)):
            heard = (f'last heard from at {timezone.localtime(record.heartbeat_at):%Y-%m-%d %H:%M:%S %Z}'
                     if record.heartbeat_at else 'never heard from')
            error = f'worker lost: its worker {record.worker} on host {record.host} stopped ({heard})'
            duration = (now - record.result.started_at).total_seconds() if record.result.started_at else None
            if finish(record.result_id, Outcome.LOST, error, record.output_tail, duration):
                lost.append(DBTaskResult.objects.get(pk=record.result_id))
    return lost


def silent(record, now):
    """Whether the worker of a running task has not been heard from for LOST_AFTER."""
    return liveness.silent(record.heartbeat_at, now)


def _alive_here(worker, own_pid):
    """Whether the worker (host:pid:token) of this host may still run: its pid is alive and is
    not this process's (a restarted container gives its program the pid it had before)."""
    try:
        pid = int(worker.split(':')[1])
    except (IndexError, ValueError):
        return True
    return pid != own_pid and liveness.pid_alive(pid)


def counts():
    """{(task path, outcome): total} of every task ever ended."""
    return {(row.task, row.outcome): row.total for row in TaskRunCount.objects.all()}


def _count(task, outcome):
    add_one(TaskRunCount, task=task, outcome=outcome)
