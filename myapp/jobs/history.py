"""The record of every run: started, heartbeat, finished; and what readers ask of it."""
import os
import socket
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from myapp.models import JobRun, JobRunCount

Outcome = JobRun.Outcome

# A running run's runner writes a heartbeat this often; without one for LOST_AFTER, the
# runner is taken for dead (killed, or its machine gone) and the run for lost.
HEARTBEAT = timedelta(seconds=15)
LOST_AFTER = timedelta(seconds=60)


def this_host():
    # In a container the host name is the container's id; compose sets HOSTNAME to it too.
    return os.environ.get('HOSTNAME') or socket.gethostname()


def start(spec, trigger, scheduled_for=None):
    now = timezone.now()
    return JobRun.objects.create(
        name=spec.name, command=spec.command_line, trigger=trigger, scheduled_for=scheduled_for,
        host=this_host(), pid=os.getpid(), started_at=now, heartbeat_at=now,
    )


def heartbeat(run):
    JobRun.objects.filter(pk=run.pk, outcome=Outcome.RUNNING).update(heartbeat_at=timezone.now())


def finish(run, outcome, exit_status, summary='', output_tail=''):
    run.finished_at = timezone.now()
    run.duration = (run.finished_at - run.started_at).total_seconds()
    run.outcome, run.exit_status = outcome, exit_status
    run.summary, run.output_tail = summary, output_tail
    with transaction.atomic():
        run.save(update_fields=['finished_at', 'duration', 'outcome', 'exit_status', 'summary', 'output_tail'])
        _count(run.name, outcome)
    return run


def skip(spec, trigger, reason, scheduled_for=None):
    """Records a run that did not run the job, and why: one row, ended as it starts."""
    now = timezone.now()
    with transaction.atomic():
        run = JobRun.objects.create(
            name=spec.name, command=spec.command_line, trigger=trigger, scheduled_for=scheduled_for,
            host=this_host(), pid=os.getpid(), started_at=now, finished_at=now, duration=0.0,
            outcome=Outcome.SKIPPED, exit_status=0, summary=reason,
        )
        _count(run.name, Outcome.SKIPPED)
    return run


def mark_lost(name=None):
    """Marks as lost the runs still `running` whose runner stopped its heartbeat; with a
    name, every running run of that job (its caller holds the job's lock, so none of them
    can still be running). Returns how many."""
    runs = JobRun.objects.filter(outcome=Outcome.RUNNING)
    runs = runs.filter(name=name) if name else runs.filter(heartbeat_at__lt=timezone.now() - LOST_AFTER)
    # Read first, write only when there is something to mark: `jobs check` calls this often.
    lost = 0
    for row in list(runs.values('pk', 'name', 'started_at', 'heartbeat_at')):
        last_seen = row['heartbeat_at'] or row['started_at']
        with transaction.atomic():
            marked = JobRun.objects.filter(pk=row['pk'], outcome=Outcome.RUNNING).update(
                outcome=Outcome.LOST, finished_at=last_seen,
                duration=(last_seen - row['started_at']).total_seconds(),
                summary=f'the runner stopped without finishing; last heard of at {last_seen:%Y-%m-%d %H:%M:%S %Z}',
            )
            if marked:
                _count(row['name'], Outcome.LOST)
        lost += marked
    return lost


def holder(name):
    """The run of this job that is running, if any (the one holding its lock)."""
    return JobRun.objects.filter(name=name, outcome=Outcome.RUNNING).order_by('-started_at').first()


def worked(name):
    """The runs of a job that ran it (all but the skipped ones)."""
    return JobRun.objects.filter(name=name).exclude(outcome=Outcome.SKIPPED)


def ran_for_tick(name, tick):
    return worked(name).filter(scheduled_for=tick).order_by('started_at').first()


def ran_since(name, moment):
    """Whether a run of the job started at or after moment, or was still running then."""
    return worked(name).filter(
        Q(started_at__gte=moment) | Q(finished_at__gte=moment) | Q(outcome=Outcome.RUNNING)
    ).exists()


def last_runs(names):
    """{name: its latest run, skipped ones aside} for the given job names."""
    return _latest(JobRun.objects.exclude(outcome=Outcome.SKIPPED), names)


def last_finished(names):
    """{name: its latest run that has ended (not skipped, not running)}."""
    return _latest(JobRun.objects.exclude(outcome__in=[Outcome.SKIPPED, Outcome.RUNNING]), names)


def last_successes(names):
    """{name: its latest successful run} for the given job names."""
    return _latest(JobRun.objects.filter(outcome=Outcome.SUCCEEDED), names)


def _latest(runs, names):
    # A crontab has a few jobs, and (name, -started_at) is indexed: one short query per job.
    latest = {}
    for name in names:
        run = runs.filter(name=name).order_by('-started_at').first()
        if run:
            latest[name] = run
    return latest


def counts():
    """{(name, outcome): total} of every run ever finished."""
    return {(row.name, row.outcome): row.total for row in JobRunCount.objects.all()}


def prune(days):
    """Deletes finished runs older than days; returns how many."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = JobRun.objects.exclude(outcome=Outcome.RUNNING).filter(started_at__lt=cutoff).delete()
    return deleted


def _count(name, outcome):
    updated = JobRunCount.objects.filter(name=name, outcome=outcome).update(total=F('total') + 1)
    if not updated:
        _, created = JobRunCount.objects.get_or_create(name=name, outcome=outcome, defaults={'total': 1})
        if not created:
            JobRunCount.objects.filter(name=name, outcome=outcome).update(total=F('total') + 1)

