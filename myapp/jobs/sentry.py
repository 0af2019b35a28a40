"""Reporting runs to Sentry when SENTRY_DSN is set: a failed or timed-out run is an event
naming the job, and every run is a Sentry Crons check-in on a monitor per job that carries
its crontab schedule, so that Sentry also alerts when a job does not run at all."""
import math

from django.conf import settings
from django.utils.text import slugify

from myapp.jobs.crontab import SHORTHANDS
from myapp.models import JobRun

Outcome = JobRun.Outcome
FLUSH_SECONDS = 10


class SentryReport:
    def __init__(self, spec, line):
        self.spec, self.line = spec, line
        self.enabled = bool(settings.SENTRY_DSN)
        self.check_in_id = None
        if self.enabled:
            import sentry_sdk

            # Once per process (catch-up runs several jobs in one), and only what this module
            # sends: no integrations patching the runner.
            if not sentry_sdk.is_initialized():
                sentry_sdk.init(dsn=settings.SENTRY_DSN, default_integrations=False,
                                auto_enabling_integrations=False)

    @property
    def monitor_slug(self):
        return slugify(self.spec.name)[:50] or 'job'

    def started(self):
        if not self.enabled:
            return
        from sentry_sdk.crons import capture_checkin
        from sentry_sdk.crons.consts import MonitorStatus

        self.check_in_id = capture_checkin(monitor_slug=self.monitor_slug, status=MonitorStatus.IN_PROGRESS,
                                           monitor_config=self.monitor_config())

    def finished(self, run, outcome, summary, output_tail):
        if not self.enabled:
            return
        import sentry_sdk
        from sentry_sdk.crons import capture_checkin
        from sentry_sdk.crons.consts import MonitorStatus

        status = MonitorStatus.OK if outcome == Outcome.SUCCEEDED else MonitorStatus.ERROR
        capture_checkin(monitor_slug=self.monitor_slug, check_in_id=self.check_in_id, status=status,
                        duration=run.duration, monitor_config=self.monitor_config())
        if outcome in (Outcome.FAILED, Outcome.TIMED_OUT):
            with sentry_sdk.new_scope() as scope:
                scope.set_tag('job', self.spec.name)
                scope.set_tag('outcome', outcome)
                scope.set_tag('host', run.host)
                scope.set_context('job run', {
                    'run': run.pk, 'command': self.spec.command_line, 'exit status': run.exit_status,
                    'duration (s)': run.duration, 'summary': summary, 'output tail': output_tail,
                })
                scope.fingerprint = ['job', self.spec.name, outcome]
                sentry_sdk.capture_message(f'job {self.spec.name} {outcome}: {summary or "no output"}', level='error')
        sentry_sdk.flush(timeout=FLUSH_SECONDS)

    def monitor_config(self):
        """The monitor's schedule, when Sentry can express it, so Sentry makes the monitor
        itself and knows when a check-in is missing."""
        if self.line is None:
            return None
        crontab = five_fields(str(self.line.schedule))
        if crontab is None:
            return None
        return {
            'schedule': {'type': 'crontab', 'value': crontab},
            'timezone': str(self.line.schedule.zone),
            'checkin_margin': max(1, math.ceil(self.spec.grace / 60)),
            'max_runtime': max(1, math.ceil(self.spec.timeout / 60)),
            # Sentry's issue after --alert-after failed check-ins in a row, resolved by one success.
            'failure_issue_threshold': self.spec.alert_after,
            'recovery_threshold': 1,
        }


def five_fields(expression):
    """expression as the usual five fields, or None when it needs seconds or years."""
    fields = expression.split()
    if len(fields) == 1:
        return SHORTHANDS.get(fields[0])
    if len(fields) == 6 and fields[5] == '*':
        return ' '.join(fields[:5])
    if len(fields) == 7 and fields[0] == '0' and fields[6] == '*':
        return ' '.join(fields[1:6])
    return ' '.join(fields) if len(fields) == 5 else None
