"""One batch of a stream's messages handled in one transaction: each message handed to its
topic's handler in a savepoint of its own; a handler that raises (or runs past the handler
timeout) leaves nothing of its own behind and its message is kept as a dead letter; the
partitions' offsets, the counters and the messages per hour are written in the same
transaction. A message at or below its partition's stored offset was handled already (Kafka
delivers again what was not committed, and, during a rebalance, a message to two replicas):
it is skipped. So every message is stored, or dead-lettered, exactly once.

The batch's handlers first run in one savepoint; only when one fails are they run again each
in a savepoint of its own (a handler may thus run twice for one message, as it may when Kafka
delivers a message again: what it stores in the database is kept once)."""
import signal
import traceback
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from myapp.failures import one_line
from myapp.models import DeadLetter, StreamHour, StreamOffset, StreamState
from myapp.streams.message import headers_kept, produced_at

TRACEBACK_CHARS = 8000


class HandlerTimeout(Exception):
    pass


@dataclass
class Handled:
    stored: int = 0
    dead: int = 0
    skipped: int = 0
    last_error: str = ''

    @property
    def messages(self):
        return self.stored + self.dead


def handle_batch(stream_name, messages, handlers, timeout):
    """messages: Kafka messages without errors; handlers: {topic: function}. Returns Handled."""
    handled = Handled()
    if not messages:
        return handled
    now = timezone.now()
    with transaction.atomic():
        keys = {(message.topic(), message.partition()) for message in messages}
        offsets = {}
        for topic, partition in keys:
            StreamOffset.objects.get_or_create(stream=stream_name, topic=topic, partition=partition)
        for row in StreamOffset.objects.select_for_update().filter(stream=stream_name, topic__in={t for t, _ in keys}):
            offsets[(row.topic, row.partition)] = row
        fresh = []
        for message in messages:
            row = offsets[(message.topic(), message.partition())]
            if row.offset is not None and message.offset() <= row.offset:
                handled.skipped += 1
            else:
                fresh.append(message)
                row.offset, row.handled_at = max(row.offset if row.offset is not None else -1, message.offset()), now
        if fresh and not _all_in_one(fresh, handlers, timeout):
            for message in fresh:  # one of them failed: each in a savepoint of its own
                handler = handlers.get(message.topic())
                error = _handle(handler, message, timeout) if handler else 'no handler is declared for this topic'
                if error:
                    error_line, trace = error if isinstance(error, tuple) else (error, '')
                    keep_dead_letter(stream_name, message, _path(handler), error_line, trace, now)
                    handled.dead += 1
                    handled.last_error = f'{message.topic()}[{message.partition()}]@{message.offset()}: {error_line}'
        handled.stored = len(fresh) - handled.dead
        changed = {offsets[(message.topic(), message.partition())] for message in fresh}
        for row in changed:
            row.save(update_fields=['offset', 'handled_at'])
        if handled.messages:
            count(stream_name, handled, now)
    return handled


def _all_in_one(messages, handlers, timeout):
    """Every message handled in one savepoint (the common case: a savepoint per message costs
    a round trip each); False, with nothing of theirs kept, as soon as one fails."""
    try:
        with transaction.atomic():
            for message in messages:
                handler = handlers.get(message.topic())
                if handler is None:
                    raise _Failed()
                with _alarm(timeout):
                    handler(message)
    except (Exception, SystemExit, HandlerTimeout):
        return False
    return True


class _Failed(Exception):
    pass


def _handle(handler, message, timeout):
    """None once the handler has stored the message, else (the error in one line, traceback)."""
    try:
        with transaction.atomic(), _alarm(timeout):
            handler(message)
    except HandlerTimeout:
        return f'the handler ran longer than its HANDLER_TIMEOUT ({timeout:g} s)', ''
    except (Exception, SystemExit) as error:
        return (f'{type(error).__name__}: {one_line(error)}'[:1000],
                ''.join(traceback.format_exception(error))[-TRACEBACK_CHARS:])
    return None


@contextmanager
def _alarm(seconds):
    """HandlerTimeout raised in the handler past seconds (SIGALRM: the process's main thread)."""
    def expired(signum, frame):
        raise HandlerTimeout()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def keep_dead_letter(stream_name, message, handler, error, trace, now):
    DeadLetter.objects.update_or_create(
        stream=stream_name, topic=message.topic(), partition=message.partition(), offset=message.offset(),
        defaults={'key': message.key(), 'value': message.value(), 'headers': headers_kept(message),
                  'produced_at': produced_at(message), 'handler': handler, 'error': error, 'traceback': trace,
                  'failed_at': now})


def count(stream_name, handled, now):
    StreamState.objects.filter(name=stream_name).update(
        messages=F('messages') + handled.messages, dead_letters=F('dead_letters') + handled.dead,
        last_message_at=now, **({'last_error': handled.last_error, 'last_error_at': now} if handled.dead else {}))
    hour = now.replace(minute=0, second=0, microsecond=0)
    add = F('messages') + handled.messages
    if StreamHour.objects.filter(stream=stream_name, hour=hour).update(messages=add):
        return
    try:
        with transaction.atomic():  # a replica may create the hour's row at the same moment
            StreamHour.objects.create(stream=stream_name, hour=hour, messages=handled.messages)
    except IntegrityError:
        StreamHour.objects.filter(stream=stream_name, hour=hour).update(messages=add)


def _path(handler):
    if handler is None:
        return ''
    return f'{getattr(handler, "__module__", "")}.{getattr(handler, "__qualname__", repr(handler))}'
