"""The job history, the task queue, the backups and the alert streams as Prometheus metrics:
read from the database at each scrape, so they survive restarts and crontab reloads, and are
labelled by job name (not command text), task path and stream name."""
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from myapp.backups import status as backup_status
from myapp.jobs import history, notify
from myapp.overview import report as overview
from myapp.streams import state as stream_state
from myapp.task_queue import queue, results

PREFIX = 'tom_job'
TASK_PREFIX = 'tom_task'
STREAM_PREFIX = 'tom_stream'


class JobHistoryCollector:
    def collect(self):
        report = overview.report(check_commands=False)
        last_success = GaugeMetricFamily(f'{PREFIX}_last_success_timestamp_seconds',
                                         'Start of the last successful run (Unix time)', labels=['job'])
        last_run = GaugeMetricFamily(f'{PREFIX}_last_run_timestamp_seconds',
                                     'Start of the last run, whatever its outcome (Unix time)', labels=['job'])
        duration = GaugeMetricFamily(f'{PREFIX}_last_duration_seconds',
                                     'Duration of the last finished run', labels=['job'])
        late = GaugeMetricFamily(f'{PREFIX}_overdue',
                                 '1 while the job has missed its time past its grace, else 0', labels=['job'])
        runs = CounterMetricFamily(f'{PREFIX}_runs', 'Runs by outcome', labels=['job', 'outcome'])
        for state in report.jobs:
            if state.last_success:
                last_success.add_metric([state.name], state.last_success.started_at.timestamp())
            if state.last_run:
                last_run.add_metric([state.name], state.last_run.started_at.timestamp())
                if state.last_run.duration is not None:
                    duration.add_metric([state.name], state.last_run.duration)
            late.add_metric([state.name], 1 if state.overdue(report.now) else 0)
        for (name, outcome), total in sorted(history.counts().items()):
            runs.add_metric([name, outcome], total)
        told = CounterMetricFamily(f'{PREFIX}_notifications', 'Job notifications (JOBS_NOTIFY), sent or failed',
                                   labels=['outcome'])
        for outcome, total in sorted(notify.counts().items()):
            told.add_metric([outcome], total)
        yield from (last_success, last_run, duration, late, runs, told)


class TaskQueueCollector:
    """The queued tasks: how many wait and since when, how many run, how they ended."""

    def collect(self):
        ready = queue.ready()
        yield GaugeMetricFamily(f'{TASK_PREFIX}s_queued', 'Tasks waiting to run', value=ready.count())
        oldest = queue.oldest_waiting()
        waited = (timezone.now() - oldest.waiting_since).total_seconds() if oldest else 0
        yield GaugeMetricFamily(f'{TASK_PREFIX}s_oldest_queued_age_seconds',
                                'How long the task queued longest has waited (0 when none waits)', value=waited)
        yield GaugeMetricFamily(f'{TASK_PREFIX}s_running', 'Tasks running', value=queue.running().count())
        runs = CounterMetricFamily(f'{TASK_PREFIX}_runs', 'Tasks ended, by outcome', labels=['task', 'outcome'])
        for (task, outcome), total in sorted(results.counts().items()):
            runs.add_metric([task, outcome], total)
        yield runs


class BackupCollector:
    """The newest snapshot of the TOM and the last verify (myapp/backups)."""

    def collect(self):
        state = backup_status.state(timezone.now())
        yield GaugeMetricFamily('tom_backup_snapshots', 'Snapshots in the backup repository', value=state.count)
        if state.newest:
            yield GaugeMetricFamily('tom_backup_last_success_timestamp_seconds',
                                    'When the newest snapshot was taken (Unix time)',
                                    value=state.newest.taken_at.timestamp())
            yield GaugeMetricFamily('tom_backup_last_size_bytes', 'Bytes the newest snapshot holds',
                                    value=state.newest.size)
        if state.verified:
            yield GaugeMetricFamily('tom_backup_last_verify_timestamp_seconds', 'When a snapshot was last verified',
                                    value=state.verified.verified_at.timestamp())
            yield GaugeMetricFamily('tom_backup_last_verify_ok', '1 if the last verify found the snapshot as recorded',
                                    value=1 if state.verified.verified_ok else 0)


class StreamCollector:
    """The alert streams (myapp/streams): messages handled, dead letters and restarts since each
    first ran, the last message, and whether each is up."""

    def collect(self):
        streams = stream_state.report()
        messages = CounterMetricFamily(f'{STREAM_PREFIX}_messages', 'Messages handled (stored or dead-lettered)',
                                       labels=['stream'])
        dead = CounterMetricFamily(f'{STREAM_PREFIX}_dead_letters',
                                   'Messages whose handler failed, kept as dead letters', labels=['stream'])
        restarts = CounterMetricFamily(f'{STREAM_PREFIX}_restarts', "Restarts of the stream's process",
                                       labels=['stream'])
        last = GaugeMetricFamily(f'{STREAM_PREFIX}_last_message_timestamp_seconds',
                                 'When the stream last handled a message (Unix time)', labels=['stream'])
        up = GaugeMetricFamily(f'{STREAM_PREFIX}_up', '1 while a process of the stream is connected (or it is paused)',
                               labels=['stream'])
        waiting = GaugeMetricFamily(f'{STREAM_PREFIX}_dead_letters_waiting', 'Dead letters not yet stored by a retry',
                                    labels=['stream'])
        for row in streams.rows:
            messages.add_metric([row.name], row.state.messages)
            dead.add_metric([row.name], row.state.dead_letters)
            restarts.add_metric([row.name], row.state.restarts)
            if row.state.last_message_at:
                last.add_metric([row.name], row.state.last_message_at.timestamp())
            up.add_metric([row.name], 0 if row.status(streams.now) == stream_state.DOWN else 1)
            waiting.add_metric([row.name], row.waiting_letters)
        yield from (messages, dead, restarts, last, up, waiting)


def exposition():
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobHistoryCollector())
    registry.register(TaskQueueCollector())
    registry.register(BackupCollector())
    registry.register(StreamCollector())
    return generate_latest(registry)
