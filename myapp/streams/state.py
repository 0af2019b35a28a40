"""What the TOM knows of its alert streams, for the Jobs page, /api/jobs/, /metrics, `jobs
check`, the cron container's health and the notifications.

A stream is down when no process of it has been connected for STREAMS_DOWN_AFTER (crashed,
refused by the broker, or no cron container running it); silent when it has handled no
message for longer than its longest_silence (a heartbeat topic keeps a quiet stream from being
silent). A paused stream is neither. All of it is read from the database: the cron program
records the declaration it runs (record_declared), so the web pods need no copy of the file."""
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from myapp.failures import one_line
from myapp.models import DeadLetter, JobAlert, StreamHour, StreamState
from myapp.timing import format_duration, format_local

OK, DOWN, SILENT, PAUSED = 'ok', 'down', 'silent', 'paused'
ALERT_PREFIX = 'stream '
RETRY_TIMEOUT = 120.0     # seconds a retry's handler may run (in the web request of the Jobs page)


@dataclass
class StreamRow:
    state: object               # StreamState, as the cron program recorded it and its processes report
    per_hour: int
    waiting_letters: int        # dead letters not yet stored by a retry

    @property
    def name(self):
        return self.state.name

    def last_up(self):
        state = self.state
        return state.heartbeat_at or state.connected_at or state.first_started_at

    def status(self, now):
        state = self.state
        if state.paused_at:
            return PAUSED
        if now - self.last_up() > timedelta(seconds=settings.STREAMS_DOWN_AFTER):
            return DOWN
        if state.longest_silence and now - self.last_heard() > timedelta(seconds=state.longest_silence):
            return SILENT
        return OK

    def last_heard(self):
        state = self.state
        return max(filter(None, [state.last_message_at, state.connected_at, state.first_started_at]))

    def connected_since(self, now):
        if self.state.heartbeat_at is None or self.status(now) in (DOWN, PAUSED):
            return None
        return self.state.connected_at

    def problem(self, now):
        """A line for `jobs check`, or ''."""
        status = self.status(now)
        if status == DOWN:
            since = self.last_up()
            error = f'; last error: {self.state.last_error}' if self.state.last_error else ''
            return (f'DOWN stream {self.name}: no process of it connected since {format_local(since)} '
                    f'({format_duration((now - since).total_seconds())}; STREAMS_DOWN_AFTER '
                    f'{format_duration(settings.STREAMS_DOWN_AFTER)}){error}')
        if status == SILENT:
            heard = self.last_heard()
            return (f'SILENT stream {self.name}: no message since {format_local(heard)} '
                    f'({format_duration((now - heard).total_seconds())}; longest_silence '
                    f'{format_duration(self.state.longest_silence)})')
        return ''

    def as_dict(self, now):
        state = self.state
        since = self.connected_since(now)
        return {
            'name': self.name, 'class': state.class_path, 'status': self.status(now), 'topics': state.topics,
            'connected_since': since.isoformat() if since else None,
            'last_message_at': state.last_message_at.isoformat() if state.last_message_at else None,
            'messages_per_hour': self.per_hour, 'messages': state.messages, 'restarts': state.restarts,
            'dead_letters': state.dead_letters, 'dead_letters_waiting': self.waiting_letters,
            'last_error': state.last_error, 'paused': describe_pause(state) if state.paused_at else None,
            'longest_silence': state.longest_silence,
        }


@dataclass
class StreamsReport:
    rows: list
    now: object

    @property
    def problems(self):
        return [line for line in (row.problem(self.now) for row in self.rows) if line]


def report(now=None):
    """Every stream of the declaration the cron program runs (as it recorded it: no file is
    read here), with what its processes reported."""
    now = now or timezone.now()
    states = list(StreamState.objects.filter(declared=True).order_by('name'))
    names = [state.name for state in states]
    per_hour = _per_hour(names, now)
    waiting = dict(DeadLetter.objects.filter(stream__in=names, resolved_at=None).values_list('stream').annotate(
        n=Count('id')).values_list('stream', 'n'))
    return StreamsReport([StreamRow(state, per_hour.get(state.name, 0), waiting.get(state.name, 0))
                          for state in states], now)


def record_declared(streams):
    """Records the active streams of the declaration a cron program runs (one that is no
    longer in it is kept, marked undeclared, with its counters)."""
    now = timezone.now()
    for stream in streams:
        described = {'declared': True, 'class_path': stream.class_path, 'topics': sorted(stream.handlers),
                     'longest_silence': stream.longest_silence}
        StreamState.objects.update_or_create(name=stream.name, defaults=described,
                                             create_defaults={**described, 'first_started_at': now})
    StreamState.objects.exclude(name__in=[stream.name for stream in streams]).update(declared=False)


def declared(name):
    return StreamState.objects.filter(name=name, declared=True).exists()


def _per_hour(names, now):
    """Messages of the current hour and the share of the hour before that the last 60 minutes
    still cover."""
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    counts = {}
    share = 1 - (now - this_hour).total_seconds() / 3600
    for stream, hour, messages in StreamHour.objects.filter(
            stream__in=names, hour__gte=this_hour - timedelta(hours=1)).values_list('stream', 'hour', 'messages'):
        counts[stream] = counts.get(stream, 0) + (messages if hour == this_hour else round(messages * share))
    return counts


# --- notifications (JOBS_NOTIFY), recorded once across replicas -----------------------------

def record_changes(streams_report):
    """Records each stream turned down or silent, or back to ok, as a JobAlert named
    `stream NAME` (JobAlert.change: one process records it); myapp/jobs/notify.py sends it."""
    now = streams_report.now
    alerts = {alert.name: alert for alert in JobAlert.objects.filter(
        name__in=[ALERT_PREFIX + row.name for row in streams_report.rows])}
    recorded = []
    for row in streams_report.rows:
        status = row.status(now)
        if status == PAUSED:
            continue
        new = {DOWN: JobAlert.State.DOWN, SILENT: JobAlert.State.SILENT}.get(status, JobAlert.State.OK)
        name = ALERT_PREFIX + row.name
        if JobAlert.change(name, new, alerts.get(name), now,
                           lambda alert, row=row, new=new: _compose(row, new, alert, now)):
            recorded.append(row.name)
    return recorded


def _compose(row, new, alert, now):
    name = f'alert stream {row.name}'
    if new == JobAlert.State.OK:
        title = f'{name} has recovered'
        body = f'{name} is {alert.state} no longer ({alert.state} since {format_local(alert.changed_at)})'
    else:
        title = f'{name} is {new}'
        body = row.problem(now)
    path = reverse('jobs:list') + '#streams'
    where = f'{settings.TOM_BASE_URL}{path}' if settings.TOM_BASE_URL else f'{path} on your TOM'
    return f'{settings.TOM_NAME}: {title}', f'{body}\n\nThe Jobs page: {where}'


# --- pause, resume, retry ---------------------------------------------------------------

def describe_pause(state):
    text = f'paused by {state.paused_by} at {format_local(state.paused_at)}'
    return text + (f': {state.pause_reason}' if state.pause_reason else '')


def pause(name, by, reason=''):
    """Pauses the stream name: every replica stops its process within seconds; nothing is
    lost, it goes on from its stored offsets once resumed. False when no such stream runs."""
    return bool(StreamState.objects.filter(name=name, declared=True).update(
        paused_by=by, paused_at=timezone.now(), pause_reason=reason))


def resume(name):
    """False when it was not paused."""
    return bool(StreamState.objects.filter(name=name).exclude(paused_at=None).update(
        paused_by='', paused_at=None, pause_reason=''))


class RetryRefused(Exception):
    pass


def retry(letter_id, by):
    """Hands a dead letter to the handler that failed on it again. Stored: the letter is
    marked resolved, in the same transaction. Failing again: its error and attempts are
    updated. Returns the error line, or '' once stored."""
    from django.utils.module_loading import import_string

    from myapp.streams.handlers import set_current_stream
    from myapp.streams.message import KeptMessage
    from myapp.streams.store import _handle

    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().filter(pk=letter_id).first()
        if letter is None:
            raise RetryRefused(f'no dead letter {letter_id}')
        if letter.resolved_at:
            raise RetryRefused(f'dead letter {letter_id} was stored already, by {letter.resolved_by}')
        try:
            handler = import_string(letter.handler)
        except ImportError as error:
            raise RetryRefused(f'the handler {letter.handler!r} does not import: {one_line(error)}')
        set_current_stream(letter.stream)
        error = _handle(handler, KeptMessage.of(letter), RETRY_TIMEOUT)
        if error is None:
            DeadLetter.objects.filter(pk=letter.pk).update(resolved_at=timezone.now(), resolved_by=by)
            return ''
        line, trace = error if isinstance(error, tuple) else (error, '')
        DeadLetter.objects.filter(pk=letter.pk).update(error=line, traceback=trace, failed_at=timezone.now(),
                                                       attempts=letter.attempts + 1)
        return line


def waiting_letters(limit=50):
    return DeadLetter.objects.filter(resolved_at=None).order_by('-failed_at')[:limit]


def prune(days):
    """Deletes hourly counts and dead letters stored by a retry older than days; returns how
    many of each (the counters of StreamState stay)."""
    before = timezone.now() - timedelta(days=days)
    hours, _ = StreamHour.objects.filter(hour__lt=before).delete()
    letters, _ = DeadLetter.objects.filter(resolved_at__lt=before).delete()
    return hours, letters
