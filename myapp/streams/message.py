"""A Kafka message as handlers see it (confluent-kafka's Message: topic(), partition(),
offset(), key(), value(), headers(), timestamp()), rebuilt from what was kept of it, so that a
dead letter can be handed to its handler again."""
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE


class KeptMessage:
    def __init__(self, topic, partition, offset, key, value, headers, produced_at):
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key = bytes(key) if key is not None else None
        self._value = bytes(value) if value is not None else None
        self._headers = [(item[0], bytes.fromhex(item[1]) if item[2:] == ['hex'] else item[1].encode())
                         for item in headers or []]
        self._produced_at = produced_at

    @classmethod
    def of(cls, row):
        """From a DeadLetter (or a StreamAlert)."""
        return cls(row.topic, row.partition, row.offset, row.key, row.value, row.headers, row.produced_at)

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    def headers(self):
        return list(self._headers) or None

    def timestamp(self):
        if self._produced_at is None:
            return TIMESTAMP_NOT_AVAILABLE, -1
        return TIMESTAMP_CREATE_TIME, int(self._produced_at.timestamp() * 1000)

    def error(self):
        return None


def headers_kept(message):
    """A message's headers as JSON keeps them: [name, value as text], or [name, hex, 'hex']
    for a value that is not text."""
    kept = []
    for name, value in message.headers() or []:
        value = value or b''
        try:
            kept.append([name, value.decode()])
        except UnicodeDecodeError:
            kept.append([name, value.hex(), 'hex'])
    return kept


def produced_at(message):
    """The message's Kafka timestamp as an aware datetime, or None."""
    from datetime import UTC, datetime

    kind, milliseconds = message.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or milliseconds < 0:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, UTC)
