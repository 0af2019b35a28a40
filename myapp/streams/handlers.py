"""Handlers we ship. A handler is a function taking one Kafka message (as tom-alertstreams'
GCN handlers do): it stores what it needs in the TOM's database and returns; what it stores
is committed in the same transaction as the stream's offset, so a message is stored once,
even when Kafka delivers it again. A handler that raises makes the message a dead letter."""
from django.utils import timezone

from myapp.models import StreamAlert
from myapp.streams.message import headers_kept, produced_at

_current = {'stream': ''}


def current_stream():
    """The name of the stream whose message is being handled (a process runs one stream)."""
    return _current['stream']


def set_current_stream(name):
    _current['stream'] = name


def save_alert(message):
    """Stores the message whole as a StreamAlert: its topic, partition, offset, key, value,
    headers and Kafka timestamp."""
    # One INSERT, which a second copy of the message (its stream, topic, partition, offset) leaves alone.
    StreamAlert.objects.bulk_create([StreamAlert(
        stream=current_stream(), topic=message.topic(), partition=message.partition(), offset=message.offset(),
        key=message.key(), value=message.value(), headers=headers_kept(message), produced_at=produced_at(message),
        stored_at=timezone.now())], ignore_conflicts=True)


def heartbeat(message):
    """For a service's heartbeat topic (Hopskotch's sys.heartbeat): stores nothing; its
    messages keep the stream from being silent."""
