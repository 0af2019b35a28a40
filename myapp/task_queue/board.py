"""What the Jobs page and /api/jobs/ show of the queued tasks: those waiting (and
for how long), those running (since when, where), and how the latest ones ended."""
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django_tasks import ResultStatus
from django_tasks.backends.database.models import DBTaskResult

from myapp.models import TaskRecord
from myapp.task_queue import queue, results

RECENT = 20
QUEUED_SHOWN = 50


@dataclass
class TaskRow:
    row: object                 # DBTaskResult, with its record when it has one
    now: object

    @property
    def id(self):
        return str(self.row.pk)

    @property
    def name(self):
        return queue.name(self.row)

    @property
    def record(self):
        try:
            return self.row.record
        except TaskRecord.DoesNotExist:
            return None

    @property
    def arguments(self):
        return queue.arguments(self.row)

    @property
    def outcome(self):
        """Ours once it ended; running, or lost when its worker has not been heard from for
        LOST_AFTER (shown so, recorded so by the next worker or `jobs check`); queued."""
        record = self.record
        if record and record.outcome:
            return record.outcome
        if self.row.status == ResultStatus.RUNNING:
            if record and results.silent(record, self.now):
                return TaskRecord.Outcome.LOST
            return 'running'
        if self.row.status == ResultStatus.NEW:
            return 'queued'
        return self.row.status.lower()  # ended outside our worker (django-tasks' own db_worker)

    @property
    def failed(self):
        return self.outcome in queue.FAILED

    @property
    def waited(self):
        """Seconds it has waited in the queue (queued), or waited before it started."""
        since = queue.waiting_since(self.row)
        until = self.row.started_at or self.now
        return max(0.0, (until - since).total_seconds())

    @property
    def running_for(self):
        if self.row.started_at is None:
            return None
        return ((self.row.finished_at or self.now) - self.row.started_at).total_seconds()

    def as_dict(self):
        record = self.record
        row = self.row
        return {
            'id': self.id, 'task': row.task_path, 'name': self.name, 'arguments': self.arguments,
            'queue': row.queue_name, 'priority': row.priority, 'outcome': self.outcome,
            'enqueued_at': row.enqueued_at.isoformat(), 'waited': self.waited,
            'started_at': row.started_at.isoformat() if row.started_at else None,
            'finished_at': row.finished_at.isoformat() if row.finished_at else None,
            'host': record.host if record else '', 'duration': record.duration if record else None,
            'error': record.error if record else '', 'output_tail': record.output_tail if record else '',
            'retry_of': str(record.retry_of_id) if record and record.retry_of_id else None,
            'retried_by': record.retried_by.get_username() if record and record.retried_by else None,
            'retried_at': record.retried_at.isoformat() if record and record.retried_at else None,
        }


@dataclass
class TaskBoard:
    queued: list
    queued_count: int
    running: list
    recent: list
    now: object

    @property
    def oldest_waited(self):
        """Seconds the task queued longest has waited, or None."""
        return max((row.waited for row in self.queued), default=None)

    @property
    def stuck(self):
        """The oldest queued task has waited past TASKS_MAX_WAIT: no worker is taking tasks."""
        return self.oldest_waited is not None and self.oldest_waited > settings.TASKS_MAX_WAIT

    def as_dict(self):
        return {'queued_count': self.queued_count, 'oldest_queued_waited': self.oldest_waited,
                'queued': [row.as_dict() for row in self.queued],
                'running': [row.as_dict() for row in self.running],
                'recent': [row.as_dict() for row in self.recent]}


def task_board(now=None, recent=RECENT):
    now = now or timezone.now()
    related = ('record', 'record__retried_by')
    ready = queue.ready()
    queued = [TaskRow(row, now) for row in ready.select_related(*related)[:QUEUED_SHOWN]]
    running = [TaskRow(row, now) for row in queue.running().select_related(*related).order_by('started_at')]
    ended = (DBTaskResult.objects.finished().filter(backend_name__in=queue.backend_names())
             .select_related(*related).order_by('-finished_at')[:recent])
    return TaskBoard(queued, ready.count(), running, [TaskRow(row, now) for row in ended], now)
