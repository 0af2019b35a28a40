"""The record of every run: started, heartbeat, finished; and what readers ask of it."""
import os
from copy import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from myapp.database import add_one
from myapp.models import JobRun, JobRunCount, ScheduledJob
from myapp.supervision.liveness import LOST_AFTER, silent, this_host

Outcome = JobRun.Outcome
EPOCH = Value(datetime(1970, 1, 1, tzinfo=UTC))


def start(spec, trigger, scheduled_for=None, lock=None):
    """Records a run starting now; lock: the name of the lock it holds (the job's name)."""
    now = timezone.now()
    return JobRun.objects.create(
        name=spec.name, command=spec.command_line, trigger=trigger, scheduled_for=scheduled_for,
        lock=lock or spec.name,
        host=this_host(), pid=os.getpid(), started_at=now, heartbeat_at=now,
    )


def heartbeat(run):
    """Records that the run's runner lives; False when the run is no longer recorded running
    (another runner recorded it lost)."""
    return bool(JobRun.objects.filter(pk=run.pk, outcome=Outcome.RUNNING).update(heartbeat_at=timezone.now()))


def finish(run, outcome, exit_status, summary='', output_tail=''):
    """Records how the run ended and returns it; None when it had been recorded lost meanwhile
    (that record stands, and the run is counted once)."""
    run.finished_at = timezone.now()
    run.duration = (run.finished_at - run.started_at).total_seconds()
    run.outcome, run.exit_status = outcome, exit_status
    run.summary, run.output_tail = summary, output_tail
    with transaction.atomic():
        updated = JobRun.objects.filter(pk=run.pk, outcome=Outcome.RUNNING).update(
            finished_at=run.finished_at, duration=run.duration, outcome=outcome, exit_status=exit_status,
            summary=summary, output_tail=output_tail)
        if updated:
            _count(run.name, outcome)
    return run if updated else None


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


def gone(run, now=None):
    """Whether a `running` run's runner has stopped its heartbeat: it is lost."""
    return run.outcome == Outcome.RUNNING and silent(_last_seen(run), now or timezone.now())


def as_seen(runs, now=None):
    """The runs, with those whose runner is gone shown as lost (in memory only: readers
    such as the Jobs page never write; runners, the cron container and `jobs check` do)."""
    now = now or timezone.now()
    for run in runs:
        if run is not None and gone(run, now):
            run.outcome, run.finished_at, run.duration, run.summary = Outcome.LOST, *_lost(run)
    return runs


def mark_lost(lock=None, now=None):
    """Records as lost the runs still `running` whose runner stopped its heartbeat; with a
    lock, every running run that held it (its caller holds it now and has made sure none of
    them is alive). Returns how many."""
    runs = JobRun.objects.filter(outcome=Outcome.RUNNING)
    runs = runs.filter(lock=lock) if lock else runs.filter(heartbeat_at__lt=(now or timezone.now()) - LOST_AFTER)
    # Read first, write only when there is something to mark: the cron container asks often.
    lost = 0
    for run in list(runs.only('pk', 'name', 'started_at', 'heartbeat_at')):
        finished_at, duration, summary = _lost(run)
        with transaction.atomic():
            marked = JobRun.objects.filter(pk=run.pk, outcome=Outcome.RUNNING).update(
                outcome=Outcome.LOST, finished_at=finished_at, duration=duration, summary=summary)
            if marked:
                _count(run.name, Outcome.LOST)
        lost += marked
    return lost


def _lost(run):
    """(finished_at, duration, summary) of a run whose runner is gone."""
    last_seen = _last_seen(run)
    return (last_seen, (last_seen - run.started_at).total_seconds(),
            f'the runner stopped without finishing; last heard of at {last_seen:%Y-%m-%d %H:%M:%S %Z}')


def _last_seen(run):
    return run.heartbeat_at or run.started_at


def holders(lock):
    """The runs recorded running under this lock, newest first."""
    return list(JobRun.objects.filter(lock=lock, outcome=Outcome.RUNNING).order_by('-started_at'))


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


@dataclass
class Latest:
    """What the history says of one job, as the Jobs page and the checks read it."""
    last_run: object = None       # its latest run, skipped ones aside, running or ended
    last_success: object = None
    last_finished: object = None  # its latest run that has ended (not skipped, not running)
    failures: int = 0             # of its latest ended runs, how many failed in a row
    first_seen: object = None     # when a loaded crontab first had it


def latest(names, now=None):
    """{name: Latest} for the given job names, a run whose runner is gone shown as lost.

    Two queries however many jobs and runs: the job's row (ScheduledJob) annotated with the
    ids of its latest runs, each found through the (name, -started_at) index, then those
    runs. failures counts the runs that ended (or were lost) since its last success; a run
    still heard from does not count either way, nor does a skipped one."""
    now = now or timezone.now()
    cut = now - LOST_AFTER
    heard_lately = Q(outcome=Outcome.RUNNING) & (Q(heartbeat_at__gte=cut) | Q(heartbeat_at=None, started_at__gte=cut))
    mine = JobRun.objects.filter(name=OuterRef('name'))
    worked_runs = mine.exclude(outcome=Outcome.SKIPPED)

    def newest(runs):
        return Subquery(runs.order_by('-started_at').values('pk')[:1])

    since_success = (worked_runs.exclude(heard_lately).filter(started_at__gt=Coalesce(OuterRef('success_at'), EPOCH))
                     .order_by().values('name').annotate(total=Count('pk')).values('total'))
    rows = list(ScheduledJob.objects.filter(name__in=list(names))
                .annotate(success_at=Subquery(mine.filter(outcome=Outcome.SUCCEEDED).order_by('-started_at')
                                              .values('started_at')[:1]))
                .annotate(run_id=newest(worked_runs),
                          success_id=newest(mine.filter(outcome=Outcome.SUCCEEDED)),
                          finished_id=newest(worked_runs.exclude(outcome=Outcome.RUNNING)),
                          failures=Coalesce(Subquery(since_success), 0))
                .values('name', 'first_seen', 'run_id', 'success_id', 'finished_id', 'failures'))
    ids = {row[key] for row in rows for key in ('run_id', 'success_id', 'finished_id') if row[key]}
    runs = {run.pk: run for run in JobRun.objects.filter(pk__in=ids)} if ids else {}
    found = {}
    for row in rows:
        # A run shown lost on one side is a separate object from the same run as last ended.
        last_run = copy(runs.get(row['run_id']))
        found[row['name']] = Latest(as_seen([last_run], now)[0], runs.get(row['success_id']),
                                    runs.get(row['finished_id']), row['failures'], row['first_seen'])
    for name in set(names) - set(found):  # a job no loaded crontab has had (run by hand)
        found[name] = _latest_of(name, now, heard_lately)
    return found


def _latest_of(name, now, heard_lately):
    runs = worked(name).order_by('-started_at')
    success = runs.filter(outcome=Outcome.SUCCEEDED).first()
    since = runs.exclude(heard_lately)
    if success:
        since = since.filter(started_at__gt=success.started_at)
    return Latest(as_seen([runs.first()], now)[0], success, runs.exclude(outcome=Outcome.RUNNING).first(),
                  since.count())


def counts():
    """{(name, outcome): total} of every run ever finished."""
    return {(row.name, row.outcome): row.total for row in JobRunCount.objects.all()}


def prune(days):
    """Deletes finished runs older than days; returns how many."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = JobRun.objects.exclude(outcome=Outcome.RUNNING).filter(started_at__lt=cutoff).delete()
    return deleted


def _count(name, outcome):
    add_one(JobRunCount, name=name, outcome=outcome)
