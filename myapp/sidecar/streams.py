"""The alert streams, each in a process of its own (`manage.py streams listen NAME`), children
of the cron program: a crash or a hang of one touches neither the others nor the jobs.

A stream's process that ends is started again after a delay that doubles at each failure in
a row (RESTART_FIRST up to STREAMS_RESTART_MAX), back to the first once it had run for
STEADY_AFTER; each restart is counted and its reason kept (StreamState). Its lines reach the
container's log tagged with the stream's name. The declaration (STREAMS_FILE, ALERT_STREAMS)
is read again when the file changes: a stream added starts, one removed or made inactive
stops; an edit that does not check is refused with one line and the running streams go on.
A stream paused (Jobs page, `streams pause`) is stopped on every replica within POLL seconds
and started again once resumed. On SIGTERM every stream's process gets SIGTERM (it stores
and commits what it holds, then leaves its group) and SIGKILL a kill grace later."""
import os
import signal
import sys
import time
from subprocess import DEVNULL, PIPE, STDOUT

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from myapp.failures import one_line
from myapp.models import StreamState
from myapp.streams import declaration
from myapp.streams import state as stream_state
from myapp.supervision import liveness
from myapp.supervision.backoff import Backoff
from myapp.supervision.bounded import Bounded

POLL = 5.0                  # seconds between looks at the pauses and the declaration's file
RESTART_FIRST = 1.0
STEADY_AFTER = 60.0         # a process that ran this long before ending starts again at once
FOREIGN_BEAT = 15.0         # a foreign class's listen() says nothing: its process alive is its heartbeat


class Child(Bounded):
    """One stream's process, without a timeout: its lines passed on tagged with its name."""

    def __init__(self, stream, process, fd, started, tag_lines):
        super().__init__(process.pid, {fd: sys.stdout.buffer}, started,
                         tag=f'stream {stream.name}'.encode() if tag_lines else b'')
        self.stream = stream


class Streams:
    name = 'streams'

    def __init__(self, processes, say, path=None):
        self.processes, self.say = processes, say
        self.path = path or settings.STREAMS_FILE
        self.streams = {}       # name: declaration.Stream, active ones
        self.children = {}      # name: Child
        self.start_at = {}      # name: when to start it (again)
        self.backoff = {}       # name: its Backoff
        self.paused = set()
        self.signature = 'not read yet'
        self.recorded = False   # the running declaration is in the database (the pages read it there)
        self.next_poll = self.next_beat = 0.0
        self.stopping = False
        self.tag_lines = settings.LOG_FORMAT != 'json'

    def load_first(self):
        """The declaration at start: DeclarationError (the program does not start) if it does not check."""
        self.signature = self._signature()
        self._adopt(declaration.active(self.path))

    @property
    def wake_at(self):
        times = [self.next_poll, self.next_beat] if not self.stopping else []
        times += [at for name, at in self.start_at.items() if name not in self.children and not self.stopping]
        times += [child.kill_at for child in self.children.values() if child.kill_at is not None]
        return min(times, default=float('inf'))

    @property
    def fds(self):
        return [fd for child in self.children.values() for fd in child.open]

    def tick(self, now):
        for child in list(self.children.values()):
            child.read_available()
            if child.exit_status is not None:
                child.close()  # what its leftovers still hold of the pipe is given up
                self._ended(child, now)
            else:
                child.bound(now)  # SIGKILL a kill grace after a SIGTERM
        if self.stopping:
            return
        if not self.recorded:
            stream_state.record_declared(list(self.streams.values()))
            self.recorded = True
        if now >= self.next_poll:
            self.next_poll = now + POLL
            self._reload()
            if self.streams:  # no stream declared: no query (idle means idle)
                self.paused = set(StreamState.objects.exclude(paused_at=None).values_list('name', flat=True))
            for name in self.paused & set(self.children):
                self._terminate(self.children[name], 'paused')
        for name, stream in self.streams.items():
            if name not in self.children and name not in self.paused and now >= self.start_at.get(name, 0.0):
                self._start(stream, now)
        if now >= self.next_beat:
            self.next_beat = now + FOREIGN_BEAT
            foreign = [name for name, child in self.children.items() if not child.stream.ours]
            if foreign:
                StreamState.objects.filter(name__in=foreign).update(heartbeat_at=timezone.now(),
                                                                    host=liveness.this_host())

    def _start(self, stream, now):
        process = self.processes.start_manage(
            ['streams', 'listen', stream.name], f'stream {stream.name}',
            on_exit=lambda status, name=stream.name: self._exited(name, status), stop_with_program=True,
            env={'PYTHONUNBUFFERED': '1'}, stdin=DEVNULL, stdout=PIPE, stderr=STDOUT)
        fd = os.dup(process.stdout.fileno())
        process.stdout.close()
        os.set_blocking(fd, False)
        self.children[stream.name] = Child(stream, process, fd, now, self.tag_lines)
        self.start_at.pop(stream.name, None)

    def _exited(self, name, status):
        if name in self.children:
            self.children[name].exited(status, None)

    def _ended(self, child, now):
        name = child.stream.name
        del self.children[name]
        status = child.exit_status
        how = f'killed by {signal.Signals(-status).name}' if status < 0 else f'exit status {status}'
        if self.stopping or child.stopped_because:
            self.say.out(f'cron: stream {name} stopped ({how})', stream=name)
            return
        ran = now - child.started
        backoff = self.backoff.setdefault(name, Backoff(RESTART_FIRST, settings.STREAMS_RESTART_MAX,
                                                        STEADY_AFTER))
        delay = backoff.after(ran)
        self.start_at[name] = now + delay
        last = child.output.last_line
        reason = f'{how} after {ran:.0f} s' + (f': {last}' if last else '')
        StreamState.objects.filter(name=name).update(
            restarts=F('restarts') + 1, last_error=one_line(reason)[:1000], last_error_at=timezone.now(),
            heartbeat_at=None)
        self.say.err(f'cron: stream {name} ended ({reason}); starting it again in {delay:g} s', stream=name)

    def _terminate(self, child, why):
        if not child.stopped_because:
            self.say.out(f'cron: stream {child.stream.name} {why}: stopping its process', stream=child.stream.name)
            child.stop(why)
            child.bound(time.monotonic())  # SIGTERM now


    def _signature(self):
        try:
            stat = os.stat(self.path)
            return stat.st_mtime_ns, stat.st_size, stat.st_ino
        except OSError:
            return None

    def _reload(self):
        signature = self._signature()
        if signature == self.signature:
            return
        self.signature = signature
        try:
            streams = declaration.active(self.path)
        except declaration.DeclarationError as error:
            self.say.err(f'cron: {self.path} change refused, the running streams go on: {error}')
            return
        self.say.out(f'cron: {self.path} changed: {len(streams)} stream(s) declared')
        self._adopt(streams)

    def _adopt(self, streams):
        new = {stream.name: stream for stream in streams}
        for name, child in self.children.items():
            if name not in new or new[name] != child.stream:
                self._terminate(child, 'changed' if name in new else 'no longer declared')
        self.streams = new
        self.recorded = False
        for name in list(self.start_at):
            if name not in new:
                del self.start_at[name]

    def stop(self, signum):
        self.stopping = True
        for child in self.children.values():
            self._terminate(child, signal.Signals(signum).name)

    @property
    def busy(self):
        return bool(self.children)
