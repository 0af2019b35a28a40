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
from myapp.supervision.bounded import KILL_GRACE

POLL = 5.0                  # seconds between looks at the pauses and the declaration's file
RESTART_FIRST = 1.0
STEADY_AFTER = 60.0         # a process that ran this long before ending starts again at once
FOREIGN_BEAT = 15.0         # a foreign class's listen() says nothing: its process alive is its heartbeat


class Child:
    """One stream's process: its pipe, read a line at a time and passed on tagged."""

    def __init__(self, stream, process, fd, started):
        self.stream, self.process, self.fd, self.started = stream, process, fd, started
        self.partial = b''
        self.last_line = ''
        self.exit_status = None
        self.kill_at = None

    def read(self, tag_lines):
        """Passes on what its pipe holds now; False once it is empty for now, or at its end."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        if not data:
            self._lines([self.partial] if self.partial else [], tag_lines)
            os.close(self.fd)
            self.fd = None
            return False
        lines = (self.partial + data).split(b'\n')
        self.partial = lines.pop()
        self._lines(lines, tag_lines)
        return True

    def _lines(self, lines, tag_lines):
        out = sys.stdout.buffer
        tag = f'stream {self.stream.name}'.encode()
        for line in lines:
            text = line.decode('utf-8', 'replace').strip()
            if text:
                self.last_line = text
            out.write(line + b'\n' if not tag_lines or line.startswith(tag) else tag + b': ' + line + b'\n')
        out.flush()


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
        return [child.fd for child in self.children.values() if child.fd is not None]

    def tick(self, now):
        for child in list(self.children.values()):
            while child.fd is not None and child.read(self.tag_lines):
                pass
            if child.exit_status is not None and child.fd is None:
                self._ended(child, now)
            elif child.kill_at is not None and now >= child.kill_at:
                child.process.kill()
                child.kill_at = float('inf')
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
        self.children[stream.name] = Child(stream, process, fd, now)
        self.start_at.pop(stream.name, None)

    def _exited(self, name, status):
        if name in self.children:
            self.children[name].exit_status = status

    def _ended(self, child, now):
        name = child.stream.name
        del self.children[name]
        status = child.exit_status
        how = f'killed by {signal.Signals(-status).name}' if status < 0 else f'exit status {status}'
        if self.stopping or child.kill_at is not None:
            self.say.out(f'cron: stream {name} stopped ({how})', stream=name)
            return
        ran = now - child.started
        backoff = self.backoff.setdefault(name, Backoff(RESTART_FIRST, settings.STREAMS_RESTART_MAX,
                                                        STEADY_AFTER))
        delay = backoff.after(ran)
        self.start_at[name] = now + delay
        reason = f'{how} after {ran:.0f} s' + (f': {child.last_line}' if child.last_line else '')
        StreamState.objects.filter(name=name).update(
            restarts=F('restarts') + 1, last_error=one_line(reason)[:1000], last_error_at=timezone.now(),
            heartbeat_at=None)
        self.say.err(f'cron: stream {name} ended ({reason}); starting it again in {delay:g} s', stream=name)

    def _terminate(self, child, why):
        if child.kill_at is None:
            self.say.out(f'cron: stream {child.stream.name} {why}: stopping its process', stream=child.stream.name)
            try:
                child.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            child.kill_at = time.monotonic() + KILL_GRACE

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
