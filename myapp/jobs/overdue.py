"""The overdue alarm: which jobs of the running crontab missed their time.

healthchecks.io's rule for cron checks: a job is overdue once the first scheduled time
after its last successful start, plus its grace, has passed. A job that never succeeded
counts from when a loaded crontab first had it, so a new deployment starts green.
myapp/overview/report.py adds the task queue and the backups to make `jobs check`'s verdict.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.core.management.base import CommandError
from django.utils import timezone

from myapp.jobs import history, pauses, schedule
from myapp.jobs.options import check_command
from myapp.models import JobAlert, JobRun
from myapp.timing import format_duration, format_local


@dataclass
class Job:
    """One job of the running schedule, everything read of it in one place: its crontab line,
    its pause, its alert state, its latest runs, and by the overdue rule when it is due."""
    line: object                 # its CrontabLine
    last_run: object = None      # JobRun, running or ended
    last_success: object = None  # JobRun
    last_finished: object = None  # JobRun that has ended
    first_seen: object = None
    due: object = None           # the first scheduled time after its last success (or first sight)
    late_at: object = None       # due + grace: overdue from then on
    next_run: object = None
    pause: object = None         # the JobPause in force, or None
    failures: int = 0            # its latest ended runs that failed in a row (up to its --alert-after)
    alert: object = None         # its JobAlert: ok, failing or overdue as last told (None: never told)

    @property
    def name(self):
        return self.line.name

    @property
    def failing(self):
        """Its last --alert-after ended runs all failed (1 by default); one success clears it."""
        return self.failures >= self.line.spec.alert_after

    def overdue(self, now):
        return self.pause is None and self.late_at is not None and now > self.late_at


@dataclass
class Report:
    load: object                 # the CrontabLoad running, or None
    crontab: object
    jobs: list                   # Job of each job line
    problems: list               # (CrontabLine, reason) of lines that cannot be checked
    now: object

    @property
    def overdue(self):
        return [state for state in self.jobs if state.overdue(self.now)]

    @property
    def paused(self):
        return [state for state in self.jobs if state.pause]

    @property
    def failing(self):
        return [state for state in self.jobs if state.failing and not state.pause]


def report(now=None, check_commands=True, record_lost=False):
    """The state of every job of the running crontab. record_lost: record as lost the runs
    whose runner is gone (the cron container and `jobs check` do; readers only show them)."""
    now = now or timezone.now()
    if record_lost:
        history.mark_lost(now=now)
    load, crontab = schedule.current()
    if crontab is None:
        return Report(None, None, [], [], now)
    problems = crontab.problems()
    lines = list(crontab.jobs().values())
    if check_commands:
        for line in lines:
            try:
                check_command(line.spec.argv)
            except CommandError as error:
                problems.append((line, str(error)))
    names = [line.name for line in lines]
    # A fixed number of queries, however many jobs and runs.
    latest, latest_pauses = history.latest(names, now), pauses.latest(names)
    alerts = {alert.name: alert for alert in JobAlert.objects.filter(name__in=names)}
    states = []
    for line in lines:
        found, paused = latest[line.name], latest_pauses.get(line.name)
        state = Job(line, found.last_run, found.last_success, found.last_finished, found.first_seen,
                    pause=paused if paused and pauses.in_force(paused, now) else None,
                    failures=min(found.failures, line.spec.alert_after), alert=alerts.get(line.name))
        base = state.last_success.started_at if state.last_success else state.first_seen or load.loaded_at
        ended = pauses.ended_at(paused, now) if paused else None
        if ended and ended > base:
            base = ended  # a job resumed is due at its first time after the pause, not before
        state.due = line.schedule.next_after(base)
        state.next_run = line.schedule.next_after(now)
        if state.due is not None:
            state.late_at = state.due + timedelta(seconds=line.spec.grace)
        states.append(state)
    return Report(load, crontab, states, sorted(problems, key=lambda p: p[0].number), now)


def describe_overdue(state, now):
    ended, last = state.last_finished, state.last_run
    last_run = 'it has never run'
    if ended:
        last_run = f'last run {ended.outcome} at {format_local(ended.started_at)}'
        if ended.summary:
            last_run += f': {ended.summary}'
    if last and last.outcome == JobRun.Outcome.RUNNING:
        last_run += f'; a run is under way since {format_local(last.started_at)}'
    success = format_local(state.last_success.started_at) if state.last_success else 'never'
    return (f'OVERDUE {state.name} ({state.line.schedule}): last success {success}; due {format_local(state.due)}, '
            f'late by {format_duration((now - state.due).total_seconds())} '
            f'(grace {format_duration(state.line.spec.grace)}); {last_run}')
