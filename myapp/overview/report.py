"""The overview `jobs check`, the cron container's health, the Jobs page and /metrics read:
every job's state (myapp/jobs/overdue.py), the task that has waited longest, the backups and
the alert streams (down or silent past their allowance).
The queue of tasks is overdue when its oldest task has waited past TASKS_MAX_WAIT."""
from dataclasses import dataclass

from django.conf import settings

from myapp.backups import status as backup_status
from myapp.jobs import overdue
from myapp.streams import state as stream_state
from myapp.task_queue import queue
from myapp.timing import format_duration, format_local


@dataclass
class Overview(overdue.Report):
    oldest_task: object = None   # the queued task that has waited longest (DBTaskResult), or None
    backup: object = None        # backups.status.BackupState
    streams: object = None       # streams.state.StreamsReport

    @property
    def task_waited(self):
        """Seconds the oldest queued task has waited, or None."""
        if self.oldest_task is None:
            return None
        return (self.now - self.oldest_task.waiting_since).total_seconds()

    @property
    def tasks_stuck(self):
        """Whether the oldest queued task has waited past TASKS_MAX_WAIT: no worker takes tasks."""
        return self.task_waited is not None and self.task_waited > settings.TASKS_MAX_WAIT


def report(now=None, check_commands=True, record_lost=False):
    """The jobs' report (overdue.report, same arguments) with the task queue and the backups."""
    jobs = overdue.report(now, check_commands=check_commands, record_lost=record_lost)
    lines = [state.line for state in jobs.jobs]
    backup = backup_status.state(jobs.now, lines, {state.name: state.first_seen for state in jobs.jobs
                                                   if state.first_seen})
    return Overview(**vars(jobs), oldest_task=queue.oldest_waiting(), backup=backup,
                    streams=stream_state.report(jobs.now))


def verdict(report):
    """`jobs check`'s verdict: (a line per overdue job, crontab problem, stuck queue or old
    backup, the last line)."""
    lines = [f'PROBLEM crontab line {line.number}: {reason}' for line, reason in report.problems]
    lines += [overdue.describe_overdue(state, report.now) for state in report.overdue]
    if report.tasks_stuck:
        task = report.oldest_task
        lines.append(f'OVERDUE task queue: {queue.name(task)} task {task.pk}, queued '
                     f'{format_local(task.waiting_since)}, has waited {format_duration(report.task_waited)} '
                     f'(TASKS_MAX_WAIT {format_duration(settings.TASKS_MAX_WAIT)}): no worker is taking tasks')
    if report.backup.too_old:
        lines.append(report.backup.overdue_line())
    streams = report.streams.problems
    lines += streams
    if lines:
        stuck = ', tasks waiting' if report.tasks_stuck else ''
        stuck += ', backup too old' if report.backup.too_old else ''
        stuck += f', {len(streams)} stream problem(s)' if streams else ''
        return lines, f'{len(report.overdue)} job(s) overdue, {len(report.problems)} crontab problem(s){stuck}'
    on_time = f'ok: {len(report.jobs)} job(s) on time'
    return lines, on_time + (f', {len(report.streams.rows)} stream(s) ok' if report.streams.rows else '')
