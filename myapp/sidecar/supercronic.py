"""supercronic, the program's child: it runs the checked copy of the crontab (and reloads it
when the copy is replaced); should it ever die, it is started again, a little later each
time it dies soon after a start."""
import signal
import time

from django.conf import settings

from myapp.jobs.handshake import Handshake
from myapp.supervision.backoff import Backoff

# Set for the jobs supercronic starts: `jobs run` records them as scheduled runs.
TRIGGER_ENV = Handshake.scheduled().environment()
FIRST_DELAY, MAX_DELAY = 1.0, 60.0
# A supercronic that ran this long before dying starts again at once.
STEADY_AFTER = 60.0


class Supercronic:
    name = 'supercronic'

    def __init__(self, processes, crontab, say):
        self.processes, self.crontab, self.say = processes, crontab, say
        self.process = None
        self.started_at = None
        self.start_at = 0.0      # when to start it (again), while it does not run
        self.backoff = Backoff(FIRST_DELAY, MAX_DELAY, STEADY_AFTER)
        self.stopping = False

    def start(self, now):
        # Jobs run from the app folder with the image's Python first on PATH, and get
        # SENTRY_DSN from the crontab's copy only.
        self.process = self.processes.start(['supercronic', '-inotify', str(self.crontab)], self.name,
                                            on_exit=self._exited, env=TRIGGER_ENV, drop_env=['SENTRY_DSN'],
                                            stop_with_program=True, cwd=settings.BASE_DIR)
        self.started_at, self.start_at = now, None

    @property
    def wake_at(self):
        """When to start it again; its exit wakes the program by itself (SIGCHLD)."""
        return self.start_at if self.start_at is not None and not self.stopping else float('inf')

    fds = ()

    def tick(self, now):
        if self.start_at is not None and now >= self.start_at and not self.stopping:
            self.start(now)

    def _exited(self, status):
        self.process = None
        if self.stopping:
            return
        now = time.monotonic()
        delay = self.backoff.after(now - self.started_at)
        self.start_at = now + delay
        how = f'killed by {signal.Signals(-status).name}' if status < 0 else f'exit status {status}'
        self.say.err(f'cron: supercronic exited unexpectedly ({how}); starting it again in {delay:g} s')

    def stop(self, signum):
        """Passes the stop on: supercronic starts no new job and waits for its running ones."""
        self.stopping = True
        if self.process is not None:
            try:
                self.process.send_signal(signum)
            except ProcessLookupError:
                pass

    @property
    def busy(self):
        return self.process is not None
