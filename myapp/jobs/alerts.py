"""When to tell people (JOBS_NOTIFY): a job's state, as the overdue report sees it, is ok,
failing (its last --alert-after ended runs failed) or overdue; a message goes out when it
changes, and once when it recovers, never for each further failed run while it stays so.

A run that ends records a change at once (failing, recovered); the checks record the rest
(overdue). Each change is recorded here first, by compare and set on the job's JobAlert row:
of two cron replicas, a run and a check, or a cron container and a Kubernetes `jobs check`,
one records it, and myapp/jobs/notify.py sends it once. A paused job changes nothing."""
from types import SimpleNamespace

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from myapp.jobs import history, pauses
from myapp.jobs.overdue import Job, describe_overdue
from myapp.models import JobAlert, JobRun
from myapp.timing import format_duration, format_local

State = JobAlert.State
OUTPUT_LINES = 10


def state_of(job, now):
    if job.overdue(now):
        return State.OVERDUE
    return State.FAILING if job.failing else State.OK


def record_changes(report):
    """Records each job of the report whose state has changed since it was last recorded
    (the checks: the cron program's every 30 s, `jobs check`); returns the names of those
    this process recorded."""
    return [job.name for job in report.jobs
            if not job.pause and _change(job, state_of(job, report.now), job.alert, report.now)]


def after_run(spec, now=None):
    """Called by `jobs run` once a run has ended, so that a job turning failing or recovering
    is told at once, not at the next check; True when this process recorded a change. A job
    overdue stays so until it succeeds (the checks say when it is overdue)."""
    now = now or timezone.now()
    if pauses.of(spec.name, now):
        return False
    found = history.latest([spec.name], now)[spec.name]
    failures, last = min(found.failures, spec.alert_after), found.last_finished
    alert = JobAlert.objects.filter(name=spec.name).first()
    if last is not None and last.outcome == JobRun.Outcome.SUCCEEDED:
        new = State.OK
    elif failures >= spec.alert_after and not (alert and alert.state == State.OVERDUE):
        new = State.FAILING
    else:
        return False
    job = Job(SimpleNamespace(name=spec.name, spec=spec), last_finished=last, failures=failures,
                   last_success=last if new == State.OK else None)
    return _change(job, new, alert, now)


def _change(job, new, alert, now):
    """Records that job is now new (JobAlert.change: one process records a change); True
    when this process did."""
    return JobAlert.change(job.name, new, alert, now, lambda alert: compose(job, new, alert, now))


def compose(job, new, alert, now):
    """(title, message) telling of the job's new state, with what a person needs to act."""
    name, last = job.name, job.last_finished
    if new == State.OVERDUE:
        title = f'{name} is overdue'
        body = describe_overdue(job, now)
    elif new == State.FAILING:
        title = f'{name} is failing'
        body = f'{name} {_what_happened(job, last)}'
        if job.line.spec.alert_after > 1:
            body += f'; {job.failures} runs in a row have failed'
        if last and last.summary:
            body += f'\n\n{last.summary}'
        if last and last.output_tail:
            tail = '\n'.join(last.output_tail.splitlines()[-OUTPUT_LINES:])
            body += f'\n\nThe last lines of its output:\n{tail}'
    else:
        title = f'{name} has recovered'
        success = job.last_success
        body = f'{name} is {alert.state} no longer'
        if success:
            body += f': it succeeded at {format_local(success.started_at)}'
        body += f' ({alert.state} since {format_local(alert.changed_at)})'
    return f'{settings.TOM_NAME}: {title}', f'{body}\n\n{link(name)}'


def _what_happened(job, run):
    if run is None:
        return 'has failed'
    when = format_local(run.started_at)
    if run.outcome == JobRun.Outcome.TIMED_OUT:
        return f'timed out after {format_duration(job.line.spec.timeout)} (run started {when})'
    if run.outcome == JobRun.Outcome.LOST:
        return f'was lost: its runner stopped being heard from (run started {when})'
    return f'failed with exit status {run.exit_status} (run started {when})'


def link(name):
    """The job's page, when TOM_BASE_URL says where the TOM is."""
    path = reverse('jobs:detail', args=[name])
    if not settings.TOM_BASE_URL:
        return f'Its page: {path} on your TOM (set TOM_BASE_URL for a full link)'
    return f'Its page: {settings.TOM_BASE_URL}{path}'


def mark_unsent_as_told(now=None):
    """With no channel configured, changes are recorded as told: turning notifications on
    later does not send the past."""
    JobAlert.objects.filter(notified_at=None).update(notified_at=now or timezone.now())
