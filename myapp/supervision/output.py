"""A job's output: passed through as it comes, and what its history keeps of it."""
from collections import deque

SUMMARY_PREFIX = 'done:'   # our jobs end with such a line; for others the last line stands in
TAIL_LINES = 100
TAIL_CHARS = 8000
LINE_CHARS = 1000


class Output:
    def __init__(self, streams, tag=b''):
        self.streams = streams          # {fd: binary file to pass its output through to}
        # With a tag, whole lines are passed on, those not starting with it tagged (an alert
        # stream's name); without, the output as it comes.
        self.tag = tag
        self.partial = {fd: b'' for fd in streams}
        self.tail_lines = deque(maxlen=TAIL_LINES)
        self.summary_line = ''
        self.last_line = ''

    def feed(self, fd, data):
        """data read from the job's fd: written through at once, its whole lines kept."""
        out = self.streams[fd]
        lines = (self.partial[fd] + data).split(b'\n')
        self.partial[fd] = lines.pop()
        out.write(b''.join(self._tagged(line) + b'\n' for line in lines) if self.tag else data)
        out.flush()
        for line in lines:
            self._keep(line)

    def close(self):
        for fd, rest in self.partial.items():
            if rest:
                self.streams[fd].write(self._tagged(rest) + b'\n' if self.tag else b'\n')
                self.streams[fd].flush()
                self._keep(rest)
            self.partial[fd] = b''

    def _tagged(self, line):
        return line if line.startswith(self.tag) else self.tag + b': ' + line

    def _keep(self, raw):
        line = raw.decode('utf-8', 'replace').rstrip()
        if len(line) > LINE_CHARS:
            line = line[:LINE_CHARS] + ' [...]'
        self.tail_lines.append(line)
        if line.strip():
            self.last_line = line.strip()
            if self.last_line.startswith(SUMMARY_PREFIX):
                self.summary_line = self.last_line

    @property
    def summary(self):
        """The job's last `done: ...` line, or else its last line of output."""
        return self.summary_line or self.last_line

    @property
    def tail(self):
        return '\n'.join(self.tail_lines)[-TAIL_CHARS:]
