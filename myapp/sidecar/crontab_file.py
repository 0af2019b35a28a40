"""The crontab as the cron program runs it: each version of the file checked with
`supercronic -test` before supercronic sees it, loaded into a private copy when valid,
refused with the line that is wrong when not, and recorded in the database either way.

The copy starts with two lines of ours: CRON_TZ=UTC, so that schedules are in UTC unless
the crontab sets CRON_TZ (supercronic would take the container's TZ), and SENTRY_DSN, which
reaches the jobs that way only (in supercronic's own environment it would report every
failure a second time). The file is polled, which sees an edit however it was saved and
through any kind of mount; a valid version replaces the copy by a rename, which
supercronic's inotify sees.
"""
import os
import re
import subprocess
from pathlib import Path

from django.conf import settings

from myapp.jobs import schedule

# supercronic's logfmt lines: msg="..." with \" and \\ escaped.
MESSAGE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


class CrontabError(Exception):
    """The crontab cannot be run; the message says why in one line."""


class CrontabFile:
    name = 'crontab watch'

    def __init__(self, source, workdir, say):
        self.source, self.say = Path(source), say
        self.active = Path(workdir) / 'crontab'
        self.candidate = Path(workdir) / 'candidate'
        self.seen = None
        self.loads = 0          # how many versions it has loaded
        self.unrecorded = []    # (text, reason or None) still to record in the database
        self.next_poll = 0.0

    @property
    def wake_at(self):
        return self.next_poll

    fds = ()

    def load_first(self):
        """Checks and loads the crontab at start; CrontabError when it cannot be run."""
        try:
            text = self.source.read_bytes()
        except OSError as error:
            raise CrontabError(f'cannot read the crontab {self.source}: {error.strerror}')
        reason = self._check(text)
        if reason:
            raise CrontabError(f'{self.source} is not a valid crontab: {reason}')
        self._activate()
        jobs = sum(1 for line in text.decode().splitlines() if re.match(r'\s*[0-9*@]', line))
        self.say.out(f'cron: running {self.source} ({jobs} job(s)); edits are checked and loaded live')
        self.unrecorded.append((text.decode(), None))
        # Recorded before supercronic starts, so that its first runs find their schedule (their
        # cron tick, their Sentry monitor).
        self.record()

    def tick(self, now):
        if now < self.next_poll:
            return
        self.next_poll = now + settings.CRONTAB_POLL_SECONDS
        self.record()
        try:
            text = self.source.read_bytes()
        except OSError:
            return  # an editor half-way through a save: look again next time
        if text == self.seen:
            return
        reason = self._check(text)
        if reason is None:
            self._activate()
            self.say.out(f'cron: {self.source} changed: new schedule loaded')
        else:
            self.say.err(f'cron: {self.source} change rejected, the previous schedule keeps running: {reason}')
        self.unrecorded.append((text.decode(errors='replace'), reason))
        self.record()

    def record(self):
        """Records the loads and rejections not recorded yet (the database may have been away)."""
        while self.unrecorded:
            text, reason = self.unrecorded[0]
            if reason is None:
                schedule.record_load(text)
            else:
                schedule.record_rejection(text, reason)
            self.unrecorded.pop(0)

    @property
    def recorded(self):
        return not self.unrecorded

    def stop(self, signum):
        pass  # edits are still loaded while running jobs end

    busy = False

    def _check(self, text):
        """Writes text as the candidate copy; None when supercronic accepts it, else why not."""
        self.seen = text
        preamble = 'CRON_TZ=UTC\n' + (f'SENTRY_DSN={settings.SENTRY_DSN}\n' if settings.SENTRY_DSN else '')
        self.candidate.write_bytes(preamble.encode() + text)
        try:
            test = subprocess.run(['supercronic', '-test', str(self.candidate)], capture_output=True, text=True)
        except OSError as error:
            raise CrontabError(f'supercronic cannot be run: {error.strerror} (it must be on PATH)')
        if test.returncode == 0:
            return None
        messages = [m.replace('\\"', '"').replace('\\\\', '\\') for m in MESSAGE.findall(test.stdout + test.stderr)]
        messages = [m for m in messages if 'reaping' not in m]
        return messages[-1] if messages else f'supercronic -test exited with status {test.returncode}'

    def _activate(self):
        os.replace(self.candidate, self.active)
        self.loads += 1
