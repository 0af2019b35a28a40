"""Run now: the requests stored by the Jobs page, each taken by one cron container and run in
a `jobs run` process of its own: at once when PostgreSQL's NOTIFY says one was stored
(myapp/sidecar/wakeup.py), else at the next poll (every poll_every seconds)."""
from myapp.jobs import run_now, schedule
from myapp.jobs.handshake import Handshake
from myapp.models import JobRequest

POLL_SECONDS = 5.0      # without notifications (SQLite); with them, program.LISTENING_POLL


class RunNow:
    name = 'run now'

    def __init__(self, processes, say):
        self.processes, self.say = processes, say
        self.running = 0
        self.next_poll = 0.0
        self.poll_every = POLL_SECONDS
        self.stopping = False

    @property
    def wake_at(self):
        return float('inf') if self.stopping else self.next_poll

    fds = ()

    def tick(self, now):
        if self.stopping or now < self.next_poll:
            return
        self.next_poll = now + self.poll_every
        while (request := run_now.take()) is not None:
            line = schedule.line_of(request.name)
            if line is None:
                JobRequest.objects.filter(pk=request.pk).update(error='the running crontab has no such job')
                self.say.err(f'cron: run now of {request.name}: the running crontab has no such job', job=request.name)
                continue
            added = f' {" ".join(request.arguments)}' if request.arguments else ''
            self.say.out(f'cron: run now of {request.name}{added}, asked by {request.requested_by} '
                         f'at {request.requested_at:%Y-%m-%d %H:%M:%S %Z}', job=request.name, request=request.pk)
            self.running += 1
            self.processes.start_job(run_now.spec_of(request, line), f'run now of {request.name}', on_exit=self._ended,
                                     env=Handshake.run_now(request.pk).environment())

    def _ended(self, status):
        self.running -= 1

    def stop(self, signum):
        self.stopping = True

    @property
    def busy(self):
        return self.running > 0
