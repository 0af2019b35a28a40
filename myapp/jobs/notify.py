"""Sending what myapp/jobs/alerts.py recorded: to every Apprise URL of JOBS_NOTIFY (e-mail,
Slack, Mattermost, Discord, Telegram, ntfy, a webhook ...) and, with JOBS_NOTIFY_EMAIL_STAFF,
by the TOM's own e-mail settings to its staff. Each message is claimed before it is sent
(compare and set), so that two senders never send it twice; one that cannot be sent is a log
line and a count in /metrics, and is tried again at the next check, never a failed job.
With JOBS_NOTIFY_REPEAT, a job still failing or overdue is told again that often."""
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from myapp.database import add_one
from myapp.failures import one_line
from myapp.jobs import alerts
from myapp.models import JobAlert, NotificationCount

CLAIM = timedelta(minutes=2)   # a sender that dies lets another try after this


def configured():
    return bool(settings.JOBS_NOTIFY or settings.JOBS_NOTIFY_EMAIL_STAFF)


def due(now=None):
    """The alerts to send now: changes not yet told, and reminders."""
    now = now or timezone.now()
    pending = Q(notified_at=None)
    if settings.JOBS_NOTIFY_REPEAT:
        pending |= ~Q(state=JobAlert.State.OK) & Q(notified_at__lt=now - timedelta(seconds=settings.JOBS_NOTIFY_REPEAT))
    return JobAlert.objects.filter(pending).filter(Q(sending_until=None) | Q(sending_until__lt=now))


def send_due(say):
    """Sends every alert due; returns (sent, failed)."""
    if not configured():
        alerts.mark_unsent_as_told()
        return 0, 0
    sent = failed = 0
    for alert in due():
        now = timezone.now()
        # Claimed only as it was read (not told since, not changed since, nobody sending it).
        unchanged = JobAlert.objects.filter(pk=alert.pk, notified_at=alert.notified_at, changed_at=alert.changed_at)
        claimed = unchanged.filter(Q(sending_until=None) | Q(sending_until__lt=now)).update(sending_until=now + CLAIM)
        if not claimed:
            continue  # another sender has it
        title = alert.title if alert.notified_at is None else f'Still {alert.state}: {alert.title}'
        error = deliver(title, alert.message)
        if error is None:
            JobAlert.objects.filter(pk=alert.pk).update(notified_at=timezone.now(), sending_until=None)
            add_one(NotificationCount, outcome='sent')
            say.out(f'jobs: told {_channels()} that {alert.name} is {alert.state}')
            sent += 1
        else:
            JobAlert.objects.filter(pk=alert.pk).update(sending_until=None)
            add_one(NotificationCount, outcome='failed')
            say.err(f'jobs: could not tell that {alert.name} is {alert.state}: {error}; trying again at the next check')
            failed += 1
    return sent, failed


def deliver(title, body):
    """Sends to every channel; None when all took it, else why not (one line)."""
    errors = []
    if settings.JOBS_NOTIFY:
        errors += _apprise(title, body)
    if settings.JOBS_NOTIFY_EMAIL_STAFF:
        errors += _email_staff(title, body)
    return '; '.join(errors) or None


def _apprise(title, body):
    import apprise

    channels = apprise.Apprise()
    if not channels.add(settings.JOBS_NOTIFY):
        return ['JOBS_NOTIFY holds no URL that Apprise understands']
    with apprise.LogCapture(level=apprise.logging.WARNING) as log:
        if channels.notify(title=title, body=body):
            return []
        said = [line for line in log.getvalue().splitlines() if line.strip()]
    return [f'JOBS_NOTIFY: {one_line(said[-1]) if said else "a channel refused the message"}']


def _email_staff(title, body):
    staff = [user.email for user in get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email='')]
    if not staff:
        return ['JOBS_NOTIFY_EMAIL_STAFF: no active staff user has an e-mail address']
    try:
        send_mail(title, body, settings.DEFAULT_FROM_EMAIL, staff)
    except Exception as error:  # SMTP and socket errors alike: the channel is down
        return [f'e-mail to staff: {type(error).__name__}: {one_line(error)}']
    return []


def _channels():
    return ' and '.join(filter(None, ['JOBS_NOTIFY' if settings.JOBS_NOTIFY else '',
                                      'staff by e-mail' if settings.JOBS_NOTIFY_EMAIL_STAFF else '']))


def counts():
    return {row.outcome: row.total for row in NotificationCount.objects.all()}
