"""What the cron program tells a `jobs run` it starts, and why: the one handshake between
them, written into the child's environment by the starter and read back by `jobs run`.

supercronic starts the scheduled runs with the program's environment, so the program sets
TOM_JOBS_TRIGGER=schedule in supercronic's own; catch-up and Run now set it per child.
A `jobs run` started by hand carries none of it and is a manual run.

Under Kubernetes the chart sets TOM_JOBS_TRIGGER=schedule in every CronJob's pod, with the
CronJob's name and the Job's (TOM_JOBS_CRONJOB, TOM_JOBS_KUBERNETES_JOB): the CronJob names
each Job it starts `<cronjob>-<scheduled minute since the epoch>`, which gives the exact tick;
a Job an operator made with `kubectl create job NAME --from=cronjob/...` inherits the same
environment under another name, and is a manual run (not "the tick already ran")."""
from dataclasses import dataclass
from datetime import UTC, datetime

from myapp.models import JobRun

Trigger = JobRun.Trigger
TRIGGER, TICK, REQUEST = 'TOM_JOBS_TRIGGER', 'TOM_JOBS_TICK', 'TOM_JOBS_REQUEST'
CRONJOB, KUBERNETES_JOB = 'TOM_JOBS_CRONJOB', 'TOM_JOBS_KUBERNETES_JOB'
VARIABLES = (TRIGGER, TICK, REQUEST)


class BadHandshake(ValueError):
    pass


@dataclass(frozen=True)
class Handshake:
    trigger: Trigger = Trigger.MANUAL
    tick: datetime = None       # the scheduled time a catch-up run stands in for
    request: int = None         # the Run now request (JobRequest id) it serves

    @classmethod
    def scheduled(cls):
        return cls(Trigger.SCHEDULE)

    @classmethod
    def catch_up(cls, tick):
        return cls(Trigger.CATCH_UP, tick=tick)

    @classmethod
    def run_now(cls, request_id):
        return cls(Trigger.RUN_NOW, request=request_id)

    def environment(self):
        """The variables to set for the child (a manual run needs none)."""
        env = {}
        if self.trigger != Trigger.MANUAL:
            env[TRIGGER] = self.trigger.value
        if self.tick is not None:
            env[TICK] = self.tick.isoformat()
        if self.request is not None:
            env[REQUEST] = str(self.request)
        return env

    @classmethod
    def from_environment(cls, environ):
        """What the starter said; BadHandshake naming the variable that makes no sense."""
        try:
            trigger = Trigger(environ.get(TRIGGER) or Trigger.MANUAL)
        except ValueError:
            raise BadHandshake(f'{TRIGGER}={environ[TRIGGER]!r} is none of '
                               f'{", ".join(choice.value for choice in Trigger)}')
        try:
            tick = datetime.fromisoformat(environ[TICK]) if environ.get(TICK) else None
        except ValueError:
            raise BadHandshake(f'{TICK}={environ[TICK]!r} is not an ISO 8601 time')
        try:
            request = int(environ[REQUEST]) if environ.get(REQUEST) else None
        except ValueError:
            raise BadHandshake(f'{REQUEST}={environ[REQUEST]!r} is not a request id')
        if request is not None:
            trigger = Trigger.RUN_NOW
        elif trigger == Trigger.SCHEDULE and tick is None and environ.get(CRONJOB) and environ.get(KUBERNETES_JOB):
            tick = _scheduled_minute(environ[CRONJOB], environ[KUBERNETES_JOB])
            trigger = Trigger.SCHEDULE if tick else Trigger.MANUAL
        return cls(trigger, tick, request)


def _scheduled_minute(cronjob, job):
    """The tick a CronJob's Job was started for, from its name; None for a Job named otherwise."""
    minute = job.removeprefix(f'{cronjob}-')
    if minute == job or not minute.isdigit():
        return None
    return datetime.fromtimestamp(int(minute) * 60, UTC)
