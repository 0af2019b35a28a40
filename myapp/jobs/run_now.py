"""Run now: a request stored by the web container, picked up by the cron container within
seconds and run through `jobs run` (same lock, timeout and history), whose run is linked
to it so the Jobs page can follow it from queued to its outcome."""
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from myapp.jobs import schedule
from myapp.jobs.history import this_host
from myapp.models import JobRequest

# `jobs run` started for a request finds it by this variable.
REQUEST_VARIABLE = 'TOM_JOBS_REQUEST'
POLL_SECONDS = 1.0
# A request taken but with no run this long after is shown as failed to start.
START_WITHIN = timedelta(minutes=2)


def ask(name, user):
    """Stores a request to run the job name now; None when the running crontab has no such job."""
    if schedule.line_of(name) is None:
        return None
    return JobRequest.objects.create(name=name, requested_by=user, requested_at=timezone.now())


def state(request, now=None):
    """Where a request is: queued, starting, the outcome of its run, or `not started`."""
    now = now or timezone.now()
    if request.run_id:
        return request.run.outcome
    if request.error:
        return 'not started'
    if request.picked_at is None:
        return 'queued'
    return 'starting' if now - request.picked_at < START_WITHIN else 'not started'


def link(request_id, run):
    """Called by the runner: the run (or skipped run) that served request_id."""
    JobRequest.objects.filter(pk=request_id, run=None).update(run=run)


def serve(say, while_pid=None, poll=POLL_SECONDS):
    """Takes waiting requests, oldest first, and starts `jobs run` for each, until the
    process while_pid (supercronic) is gone. Each request is taken by one cron container."""
    children = []
    while while_pid is None or _alive(while_pid):
        children = [child for child in children if child.poll() is None]
        request = _take()
        if request is None:
            time.sleep(poll)
            continue
        line = schedule.line_of(request.name)
        if line is None:
            JobRequest.objects.filter(pk=request.pk).update(error='the running crontab has no such job')
            say.err(f'jobs: run now of {request.name}: the running crontab has no such job')
            continue
        say.out(f'jobs: run now of {request.name}, asked by {request.requested_by} '
                f'at {request.requested_at:%Y-%m-%d %H:%M:%S %Z}')
        spec = line.spec
        children.append(subprocess.Popen(
            [sys.executable, str(Path(settings.BASE_DIR) / 'manage.py'), 'jobs', 'run', '--name', spec.name,
             '--timeout', f'{spec.timeout:g}', '--grace', f'{spec.grace:g}', *spec.argv],
            env={**os.environ, REQUEST_VARIABLE: str(request.pk)},
        ))


def _take():
    """The oldest waiting request, now taken by this container, or None."""
    for request in JobRequest.objects.filter(picked_at=None).order_by('requested_at')[:5]:
        # Compare and set: of two cron containers, one takes it.
        if JobRequest.objects.filter(pk=request.pk, picked_at=None).update(picked_at=timezone.now(),
                                                                           host=this_host()):
            return request
    return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
