"""Catch-up at start: each job missed while no cron container ran (myapp/jobs/catchup.py
says which) is run once, one after the other, each in a `jobs run` process of its own."""
from myapp.jobs import catchup
from myapp.jobs.handshake import Handshake
from myapp.timing import format_moment


class CatchUp:
    name = 'catch-up'

    def __init__(self, processes, crontab, say):
        self.processes, self.crontab, self.say = processes, crontab, say
        self.due = None         # [(CrontabLine, tick)] once worked out
        self.current = None
        self.stopping = False

    @property
    def wake_at(self):
        """At once while a missed run waits for the one before to end (whose end wakes the
        program); otherwise never: the crontab watch's polls tick it until it knows."""
        return 0.0 if self.due and self.current is None and not self.stopping else float('inf')

    fds = ()

    def tick(self, now):
        if self.stopping or self.current is not None:
            return
        if self.due is None:
            if not self.crontab.recorded:
                return  # what was missed is worked out against the schedule this container loads
            self.due = catchup.missed()
        if self.due:
            line, tick = self.due.pop(0)
            self.say.out(f'cron: catching up {line.name}: its run of {format_moment(tick)} was missed', job=line.name)
            self.current = self.processes.start_job(
                line.spec, f'catch-up run of {line.name}', on_exit=self._ended,
                env=Handshake.catch_up(tick).environment())

    def _ended(self, status):
        self.current = None

    def stop(self, signum):
        self.stopping = True

    @property
    def busy(self):
        return self.current is not None
