"""A task that failed (raised, timed out, its process or worker lost) as a Sentry event
naming the task, when SENTRY_DSN is set. Sent by `tasks report ID`, which the worker starts
once it has recorded the failure (the worker itself starts no thread, Sentry's transport
would be one), and by `jobs check` for the tasks it finds lost."""
from django.conf import settings

from myapp.task_queue import queue

FLUSH_SECONDS = 10


def report_failure(row):
    """Sends the failure of the task of row (with its TaskRecord); False when Sentry is off."""
    if not settings.SENTRY_DSN:
        return False
    import sentry_sdk

    if not sentry_sdk.is_initialized():
        sentry_sdk.init(dsn=settings.SENTRY_DSN, default_integrations=False, auto_enabling_integrations=False)
    record = row.record
    with sentry_sdk.new_scope() as scope:
        scope.set_tag('task', row.task_path)
        scope.set_tag('outcome', record.outcome)
        scope.set_tag('host', record.host)
        scope.set_context('task', {
            'id': str(row.pk), 'task': row.task_path, 'arguments': row.args_kwargs, 'duration (s)': record.duration,
            'error': record.error, 'traceback': row.traceback, 'output tail': record.output_tail,
        })
        scope.fingerprint = ['task', row.task_path, record.outcome]
        sentry_sdk.capture_message(f'task {queue.name(row)} {record.outcome}: {record.error or "no error line"}',
                                   level='error')
    sentry_sdk.flush(timeout=FLUSH_SECONDS)
    return True
