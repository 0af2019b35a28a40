"""The Jobs tab of a target's page (myapp/apps.py's `target_detail_tabs`): the save_data runs
asked for this target, the latest scheduled one, and for staff "Download data now"."""
from myapp.jobs import history, run_now, schedule
from myapp.models import JobRequest, JobRun

SHOWN = 10


def save_data_line():
    """The crontab line that runs save_data, or None."""
    _, crontab = schedule.current()
    if crontab is None:
        return None
    return next((line for line in crontab.jobs().values() if line.spec.command == 'save_data'), None)


def context(context):
    target = context.get('target') or context.get('object')
    user = context['request'].user
    line = save_data_line()
    requests = list(JobRequest.objects.filter(target=target).select_related('run', 'requested_by')[:SHOWN])
    latest = JobRun.objects.filter(name=line.name).exclude(trigger=JobRun.Trigger.RUN_NOW).first() if line else None
    return {
        'save_data_line': line,
        'target_requests': [(request, run_now.state(request)) for request in requests],
        'latest_save_data': history.as_seen([latest])[0] if latest else None,
        'may_download': line is not None and user.is_staff,
    }
