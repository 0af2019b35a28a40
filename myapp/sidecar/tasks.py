"""Queued tasks: taken from the database, each run in a process of its own (`manage.py
tasks run ID`), TASKS_CONCURRENCY at once, stopped past TASKS_TIMEOUT (SIGTERM, then SIGKILL
a kill grace later); their output passed through to the container's log with its tail
kept; their end recorded, and a failure reported to Sentry. Tasks that a worker left running
when it died are recorded lost, never run again unless someone retries them."""
import logging
import os
import secrets
import signal
import sys
from subprocess import DEVNULL, PIPE, STDOUT

from django.conf import settings
from django_tasks import ResultStatus
from django_tasks.backends.database.models import DBTaskResult

from myapp.supervision import liveness
from myapp.supervision.bounded import Bounded
from myapp.task_queue import queue, results
from myapp.timing import format_duration

POLL_SECONDS = 5.0      # without notifications (SQLite); with them, program.LISTENING_POLL
LOST_CHECK_SECONDS = 30.0
Outcome = results.Outcome


class Running(Bounded):
    """A task's process: row, its DBTaskResult; its pipe read at each tick."""

    def __init__(self, row, process, pipes, started, timeout):
        super().__init__(process.pid, pipes, started, timeout)
        self.row, self.process = row, process


class TaskWorker:
    name = 'tasks'

    def __init__(self, processes, say, concurrency=None, timeout=None):
        self.processes, self.say = processes, say
        self.concurrency = concurrency or settings.TASKS_CONCURRENCY
        self.timeout = timeout or settings.TASKS_TIMEOUT
        self.host = liveness.this_host()
        # Which program took a task: a program started again (same host, maybe the same pid
        # in a new container) knows the tasks of the one before are lost.
        self.worker = f'{self.host}:{os.getpid()}:{secrets.token_hex(4)}'
        self.running = {}           # row id: Running
        self.next_poll = self.next_beat = self.next_lost_check = 0.0
        self.poll_every = POLL_SECONDS
        self.stopping = False

    @property
    def wake_at(self):
        """The first of: the next poll (while there is room), the lost-task check, the running
        tasks' heartbeat, and each one's timeout or kill. Their output wakes it too (fds)."""
        times = [self.next_lost_check]
        if not self.stopping and len(self.running) < self.concurrency:
            times.append(self.next_poll)
        if self.running:
            times.append(self.next_beat)
        for task in self.running.values():
            times.append(task.kill_at if task.kill_at is not None
                         else task.started + task.timeout if not task.stopped_because else 0.0)
        return min(times)

    @property
    def fds(self):
        return [fd for task in self.running.values() for fd in task.open]

    def tick(self, now):
        for task in list(self.running.values()):
            task.read_available()
            if task.exit_status is not None:
                self._finish(task, now)
            elif task.bound(now):
                self.say.err(f'tasks: {queue.name(task.row)} task {task.row.pk} {self._why_stopped(task)}: '
                             'stopping it (SIGTERM)', **_fields(task.row))
        if now >= self.next_lost_check:
            self.next_lost_check = now + LOST_CHECK_SECONDS
            for row in results.mark_lost(self.worker, os.getpid()):
                self.say.err(f'tasks: {queue.name(row)} task {row.pk} {row.record.error}', logging.ERROR,
                             outcome='lost', **_fields(row))
                self._report(row)
        if self.running and now >= self.next_beat:
            self.next_beat = now + liveness.HEARTBEAT.total_seconds()
            results.heartbeat(self.worker, list(self.running))
        if not self.stopping and now >= self.next_poll:
            self.next_poll = now + self.poll_every
            while len(self.running) < self.concurrency:
                row = queue.take(self.host, self.worker)
                if row is None:
                    break
                self._start(row, now)

    def _start(self, row, now):
        process = self.processes.start_manage(
            ['tasks', 'run', str(row.pk)], f'task {queue.name(row)} {row.pk}',
            on_exit=lambda status, pk=row.pk: self._exited(pk, status), stop_with_program=True,
            env={'PYTHONUNBUFFERED': '1'},  # its lines in the log as they come, and kept if it is killed
            stdin=DEVNULL, stdout=PIPE, stderr=STDOUT)
        fd = os.dup(process.stdout.fileno())  # the task's Bounded closes it; Popen's own copy goes now
        process.stdout.close()
        os.set_blocking(fd, False)
        self.running[row.pk] = Running(row, process, {fd: sys.stdout.buffer}, now, self.timeout)
        queue.started(row, process.pid)
        self.say.out(f'tasks: {queue.name(row)} task {row.pk} started on host {self.host}, pid {process.pid}, '
                     f'timeout {format_duration(self.timeout)}: {row.task_path}({queue.arguments(row)})',
                     **_fields(row))

    def _exited(self, pk, status):
        if pk in self.running:
            self.running[pk].exited(status, None)

    def _finish(self, task, now):
        """Records the end of a task whose process has ended (its output read to the end, or
        what its leftovers hold of the pipe given up)."""
        task.read_available()
        task.close()
        row = DBTaskResult.objects.get(pk=task.row.pk)
        duration = now - task.started
        if (task.timed_out or task.stopped_because) and row.status == ResultStatus.RUNNING:
            outcome = Outcome.TIMED_OUT if task.timed_out else Outcome.FAILED
            error = self._why_stopped(task)
        else:  # it ended by itself, or in the moment before it was stopped
            outcome, error = results.outcome_of(row, task.exit_status, task.output.tail)
        results.finish(row.pk, outcome, error, task.output.tail, duration)
        del self.running[row.pk]
        self.next_poll = now  # room for the next task: the queue is looked at in this tick
        line = f'tasks: {queue.name(row)} task {row.pk} {outcome} in {duration:.1f} s'
        fields = {**_fields(row), 'outcome': str(outcome), 'duration': round(duration, 3)}
        if outcome == Outcome.SUCCEEDED:
            self.say.out(line, **fields)
        else:
            self.say.err(f'{line}: {error}', logging.ERROR, **fields)
            self._report(row)

    def _report(self, row):
        if settings.SENTRY_DSN:
            self.processes.start_manage(['tasks', 'report', str(row.pk)], f'Sentry report of task {row.pk}')

    def _why_stopped(self, task):
        if task.timed_out:
            return f'timed out after {format_duration(self.timeout)} (TASKS_TIMEOUT)'
        return task.stopped_because

    def stop(self, signum):
        """No new task; those running are stopped, their end recorded as failed."""
        self.stopping = True
        name = signal.Signals(signum).name
        for task in self.running.values():
            task.stop(f'stopped: its worker was stopped ({name})')

    @property
    def busy(self):
        return bool(self.running)


def _fields(row):
    """What each line of a task carries as log fields (LOG_FORMAT=json)."""
    return {'task': queue.name(row), 'task_id': str(row.pk)}
