"""One supervised child, seen to its end: its output passed through as it comes with its
tail kept, stopped past its timeout or when asked (SIGTERM to its process group, SIGKILL a
kill grace later), and, once it has exited, how it ended in the words the history keeps."""
import os
import signal

from myapp.supervision.output import Output
from myapp.supervision.process import signal_group

KILL_GRACE = 10.0          # seconds between SIGTERM and SIGKILL for a child stopped
TIMED_OUT_STATUS = 124     # as timeout(1) says it

SUCCEEDED, FAILED, TIMED_OUT = 'succeeded', 'failed', 'timed out'


class Bounded:
    """pid: the child, leader of its own process group; pipes: {fd it writes to: binary
    stream to pass it through to}; timeout: seconds from started (monotonic), or None; tag:
    see Output."""

    def __init__(self, pid, pipes, started, timeout=None, tag=b''):
        self.pid, self.started, self.timeout = pid, started, timeout
        self.output = Output(pipes, tag)
        self.open = set(pipes)        # fds not yet read to their end
        self.exit_status = None       # once it has exited (128 + N for signal N)
        self.exited_at = None
        self.timed_out = False
        self.stopped_because = ''     # why it was stopped, other than its timeout
        self.kill_at = None           # once SIGTERM is sent

    def read(self, fd, blocking=True):
        """Passes on what fd holds; closes it at its end. False when nothing more is to be
        read now (a non-blocking fd empty, or its end)."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        if not data:
            os.close(fd)
            self.open.discard(fd)
            return False
        self.output.feed(fd, data)
        return True

    def read_available(self):
        """Passes on what every (non-blocking) pipe holds now."""
        for fd in list(self.open):
            while self.read(fd):
                pass

    def exited(self, status, now):
        self.exit_status, self.exited_at = status, now

    def stop(self, because):
        """Asks for it to be stopped at the next bound(); the first reason stands."""
        self.stopped_because = self.stopped_because or because

    def bound(self, now):
        """Applies its timeout and a stop asked for; returns the reason when it sent SIGTERM
        now (its caller says so), else None."""
        if self.exit_status is not None:
            return None
        if self.kill_at is None:
            if self.timeout is not None and now >= self.started + self.timeout:
                self.timed_out = True
                reason = 'timeout'
            elif self.stopped_because:
                reason = self.stopped_because
            else:
                return None
            signal_group(self.pid, signal.SIGTERM)
            self.kill_at = now + KILL_GRACE
            return reason
        if now >= self.kill_at:
            signal_group(self.pid, signal.SIGKILL)
            self.kill_at = float('inf')
        return None

    def signal(self, sig):
        signal_group(self.pid, sig)

    def close(self):
        """Gives up what its leftovers still hold of its pipes; the output's last lines kept."""
        for fd in list(self.open):
            os.close(fd)
        self.open.clear()
        self.output.close()

    @property
    def outcome(self):
        """succeeded, failed or timed out, once it has exited."""
        if self.timed_out:
            return TIMED_OUT
        return SUCCEEDED if self.exit_status == 0 else FAILED

    @property
    def status(self):
        """Its exit status, as its supervisor passes it on: 124 when it timed out."""
        return TIMED_OUT_STATUS if self.timed_out else self.exit_status
