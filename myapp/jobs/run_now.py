"""Run now: a request stored by the web container, picked up by the cron container within
seconds (myapp/sidecar/run_now.py) and run through `jobs run` (same lock, timeout and
history), whose run is linked to it so the Jobs page can follow it from queued to its
outcome."""
from dataclasses import replace
from datetime import timedelta

from django.utils import timezone

from myapp import wake
from myapp.jobs import history, schedule
from myapp.models import JobRequest
from myapp.supervision.liveness import this_host

# A request taken but with no run this long after is shown as failed to start.
START_WITHIN = timedelta(minutes=2)
# A run asked for while another run of the job holds its lock waits this long for it (the
# hourly save_data, say), then is skipped, saying so.
WAIT_FOR_LOCK = timedelta(minutes=15)


def ask(name, user, arguments=(), target=None):
    """Stores a request to run the job name now, its command with arguments added (for one
    target: save_data's `--target_id N`); None when the running crontab has no such job."""
    if schedule.line_of(name) is None:
        return None
    request = JobRequest.objects.create(name=name, requested_by=user, requested_at=timezone.now(),
                                        arguments=list(arguments), target=target)
    wake.notify(wake.RUN_NOW)
    return request


def spec_of(request, line):
    """The job spec a request runs: its crontab line's, with the request's arguments added."""
    if not request.arguments:
        return line.spec
    return replace(line.spec, argv=(*line.spec.argv, *request.arguments))


def waiting(request_id, what):
    """Called by the runner while its run waits for the job's lock ('' once it has it)."""
    JobRequest.objects.filter(pk=request_id).update(waiting=what)


def state(request, now=None):
    """Where a request is: queued, starting, the outcome of its run, or `not started`."""
    now = now or timezone.now()
    if request.run_id:
        return history.as_seen([request.run], now)[0].outcome
    if request.error:
        return 'not started'
    if request.picked_at is None:
        return 'queued'
    if request.waiting:
        return 'waiting'
    return 'starting' if now - request.picked_at < START_WITHIN else 'not started'


def link(request_id, run):
    """Called by the runner: the run (or skipped run) that served request_id."""
    JobRequest.objects.filter(pk=request_id, run=None).update(run=run)


def take():
    """The oldest waiting request, now taken by this container, or None."""
    for request in JobRequest.objects.filter(picked_at=None).order_by('requested_at')[:5]:
        # Compare and set: of two cron containers, one takes it.
        if JobRequest.objects.filter(pk=request.pk, picked_at=None).update(picked_at=timezone.now(),
                                                                           host=this_host()):
            return request
    return None
