"""The cron container's program: its parts ticked in one loop, its children reaped, and its
stop. The loop sleeps until the first part has something due (each says when: wake_at), a
child's output or end, a signal, or, on PostgreSQL, a notification that a Run now request
or a task was stored: idle, it neither polls the database every second nor ticks twice a
second. On SIGTERM or SIGINT: SIGTERM or SIGINT is passed to supercronic, which starts no new job and waits for its
running ones; no new catch-up, Run now or task starts, running tasks are stopped and
recorded so; the program exits 0 once every job and task it or supercronic started has
ended (or the container's stop grace runs out first)."""
import os
import select
import signal
import tempfile
import time

from django.conf import settings
from django.db import DatabaseError, connection

from myapp import wake
from myapp.failures import one_line
from myapp.logs import Say
from myapp.sidecar.catch_up import CatchUp
from myapp.sidecar.crontab_file import CrontabError, CrontabFile
from myapp.sidecar.health import Health
from myapp.sidecar.processes import Processes
from myapp.sidecar.run_now import RunNow
from myapp.sidecar.streams import Streams
from myapp.sidecar.supercronic import Supercronic
from myapp.sidecar.tasks import POLL_SECONDS as POLL_WITHOUT_LISTENING
from myapp.sidecar.tasks import TaskWorker
from myapp.sidecar.wakeup import Listener
from myapp.streams.declaration import DeclarationError

# The longest sleep, whatever the parts say; the parts' polls with notifications heard
# (a safety net: a notification lost with its connection), and how often to listen again.
MAX_SLEEP = 60.0
LISTENING_POLL = 60.0
LISTEN_AGAIN_EVERY = 10.0
# A part that failed for another reason than the database is started afresh this long after.
RESTART_AFTER = 5.0
DATABASE_SAID_EVERY = 60.0


class Program:
    """role 'cron': the cron container's program, every part; 'worker': the queued tasks
    alone, with the heartbeat of its health (Kubernetes' worker Deployment, where CronJobs
    run the schedule)."""

    def __init__(self, say, role='cron'):
        self.say = say
        self.processes = Processes()
        if role == 'cron':
            self.crontab = CrontabFile(settings.CRONTAB, tempfile.mkdtemp(prefix='tom-cron-'), say)
            self.makers = {
                'crontab watch': lambda: self.crontab,
                'supercronic': lambda: Supercronic(self.processes, self.crontab.active, say),
                'catch-up': lambda: CatchUp(self.processes, self.crontab, say),
                'run now': lambda: RunNow(self.processes, say),
            }
        else:
            self.crontab, self.makers = None, {}
        self.makers['tasks'] = lambda: TaskWorker(self.processes, Say('tasks'))
        # One supervisor of the streams for the program's life: started afresh after a failure,
        # it would not know the streams' processes that run on.
        self.streams = Streams(self.processes, say)
        self.makers['streams'] = lambda: self.streams
        self.makers['health'] = lambda: Health(settings.CRON_HEALTH_FILE, self.crontab, self.processes)
        self.parts = {name: make() for name, make in self.makers.items()}
        self.broken = {}            # part name: when to start it afresh
        self.said_database_down = -DATABASE_SAID_EVERY
        self.signals = []           # received, not yet acted on
        self.stopping = None
        self.listener = Listener(say)
        self.listen_again_at = 0.0

    def run(self):
        """Runs until stopped; returns the exit status."""
        wakeup = self._catch_signals()
        self.processes.become_subreaper()
        try:
            self.streams.load_first()
            if self.crontab:
                self.crontab.load_first()
        except (CrontabError, DeclarationError) as error:
            self.say.err(f'cron: {error}')
            return 1
        except DatabaseError as error:
            self._database_down('crontab watch', error)  # recorded once the database answers
        while not (self.stopping and not any(part.busy for part in self.parts.values())):
            now = time.monotonic()
            self.processes.reap()
            while self.signals:
                self._stop(self.signals.pop(0))
            self._hear(now)
            for name in list(self.parts):
                self._tick(name, now)
            self._sleep(wakeup)
        self.listener.close()
        self.say.out('cron: every job has ended; stopped')
        try:
            os.remove(settings.CRON_HEALTH_FILE)
        except OSError:
            pass
        return 0

    def _hear(self, now):
        """Notifications heard make the parts they concern poll now; while listening, the
        parts poll seldom."""
        if self.listener.enabled and self.listener.connection is None and now >= self.listen_again_at:
            self.listen_again_at = now + LISTEN_AGAIN_EVERY
            if self.listener.open():
                self._poll_now('run now', 'tasks')  # what was stored while nobody listened
        heard = self.listener.heard()
        listening = self.listener.connection is not None
        for name, what in (('run now', wake.RUN_NOW), ('tasks', wake.TASK)):
            part = self.parts.get(name)
            if part is not None and name not in self.broken:
                part.poll_every = LISTENING_POLL if listening else POLL_WITHOUT_LISTENING
                if what in heard:
                    part.next_poll = now

    def _poll_now(self, *names):
        for name in names:
            if name in self.parts:
                self.parts[name].next_poll = 0.0

    def _sleep(self, wakeup):
        """Until the first part's wake_at, a child's output, a signal or a notification."""
        now = time.monotonic()
        restarts = [] if self.stopping else list(self.broken.values())  # none while stopping
        wake_at = min([now + MAX_SLEEP, *restarts]
                      + [part.wake_at for name, part in self.parts.items() if name not in self.broken])
        if self.listener.enabled and self.listener.connection is None:
            wake_at = min(wake_at, self.listen_again_at)
        fds = [wakeup, *(fd for name, part in self.parts.items() if name not in self.broken for fd in part.fds)]
        if self.listener.fileno() is not None:
            fds.append(self.listener.fileno())
        if wakeup in select.select(fds, [], [], max(0.0, wake_at - now))[0]:
            os.read(wakeup, 512)

    def _tick(self, name, now):
        if name in self.broken:
            if now < self.broken[name] or self.stopping:
                return  # (a part started afresh would not know of the stop)
            del self.broken[name]
            self.parts[name] = self.makers[name]()
            self.say.err(f'cron: the {name} part started again')
        try:
            self.parts[name].tick(now)
        except DatabaseError as error:
            self._database_down(name, error)
        except Exception as error:
            self.say.err(f'cron: the {name} part failed: {type(error).__name__}: {one_line(error)}; '
                         f'starting it again in {RESTART_AFTER:g} s')
            self.broken[name] = now + RESTART_AFTER

    def _database_down(self, name, error):
        """Each part tries again at its next tick; said once a minute at most."""
        connection.close()  # the next query reconnects
        now = time.monotonic()
        if now - self.said_database_down >= DATABASE_SAID_EVERY:
            self.said_database_down = now
            self.say.err(f'cron: the {name} part cannot reach the database, trying again: {one_line(error)}')

    def _catch_signals(self):
        """A pipe written on every signal, so that the loop wakes at once."""
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: self.signals.append(signum))
        return read_end

    def _stop(self, signum):
        name = signal.Signals(signum).name
        running = self.processes.running()
        self.say.out(f'cron: {name}: stopping; waiting for what runs: {", ".join(running) or "nothing"}')
        self.stopping = name
        for part in self.parts.values():
            part.stop(signum)

