"""The cron container's health, kept current by its program: every job's overdue state by
the rule of `jobs check` (recomputed every health_file.CHECK seconds and once a new crontab
is recorded, recording runs whose runner is gone as lost), and a heartbeat, in the file
the health check reads; each check also records the jobs that turned failing, overdue or ok,
and starts `jobs notify` to tell people (JOBS_NOTIFY). Without a crontab (the worker of
tasks alone), the heartbeat only."""
import time

from django.db import DatabaseError, connection

from myapp.failures import one_line
from myapp.jobs import alerts, notify
from myapp.overview import report as overview
from myapp.sidecar import health_file
from myapp.streams import state as stream_state


class Health:
    name = 'health'

    def __init__(self, path, crontab, processes=None):
        self.path, self.crontab, self.processes = path, crontab, processes
        self.notifying = False  # a `jobs notify` is running
        self.checked_at = None
        self.checked_loads = 0  # the crontab's loads when it last checked
        self.lines, self.verdict, self.error = [], '', ''
        self.next_check = self.next_beat = 0.0

    @property
    def wake_at(self):
        if self.crontab is None or not self.crontab.recorded:
            return self.next_beat  # nothing to check before the crontab is recorded
        return min(self.next_check, self.next_beat)

    fds = ()

    def tick(self, now):
        if self.crontab is None:  # a worker of tasks alone: its heartbeat is its health
            if now >= self.next_beat:
                self.next_beat = now + health_file.HEARTBEAT
                health_file.write(self.path, time.time(), [], 'ok: the task worker is running')
            return
        edited = self.crontab.loads != self.checked_loads
        if (now >= self.next_check or edited) and self.crontab.recorded:
            self.next_check, self.checked_loads = now + health_file.CHECK, self.crontab.loads
            try:
                report = overview.report(record_lost=True)
                self.lines, self.verdict = overview.verdict(report)
                self.checked_at, self.error = time.time(), ''
                alerts.record_changes(report)
                stream_state.record_changes(report.streams)
                self._notify()
            except DatabaseError as error:
                connection.close()
                self.error = f'database error: {one_line(error)}'
            self.next_beat = now
        if now >= self.next_beat:
            self.next_beat = now + health_file.HEARTBEAT
            health_file.write(self.path, self.checked_at, self.lines, self.verdict, self.error)

    def _notify(self):
        """Starts `jobs notify` when a notification is due (Apprise and SMTP in a process of
        their own: this program starts no thread); without a channel, records them as told."""
        if not notify.configured():
            alerts.mark_unsent_as_told()
        elif self.processes and not self.notifying and notify.due().exists():
            self.notifying = True
            self.processes.start_manage(['jobs', 'notify'], 'jobs notify', on_exit=self._notified)

    def _notified(self, status):
        self.notifying = False

    def stop(self, signum):
        pass

    busy = False
