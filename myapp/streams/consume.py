"""A stream's process, `manage.py streams listen NAME`, started and restarted by the cron
program (myapp/sidecar/streams.py): one stream, in a process of its own.

Our loop (our Kafka class, and tom-alertstreams' GCN class): the consumer joins the stream's
group; on each assignment every partition starts after the last message the TOM stored of
it (the database is the reference: it holds the offsets written with what was stored), else
after Kafka's committed offset, else where START says. Messages are read in batches, each
batch stored in one transaction (myapp/streams/store.py), and only then committed to Kafka.
Killed at any moment, the process loses nothing: what was not stored is delivered again,
what was stored and not committed is recognised and skipped.

It ends with status 0 on SIGTERM (the batch under way stored and committed first), and 1 with
a line saying why when it cannot go on: the broker unreachable, the database gone. Any other
AlertStream class runs its own listen(), supervised the same way but with its own commits."""
import signal
import time

from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django.utils.module_loading import import_string

from myapp.failures import one_line
from myapp.models import StreamOffset, StreamState
from myapp.streams import handlers as shipped
from myapp.streams.declaration import handler_function
from myapp.streams.kafka import EARLIEST, LATEST, consumer_settings
from myapp.streams.store import handle_batch
from myapp.supervision import liveness

BATCH = 500
POLL = 1.0                 # seconds a consume waits for messages
HEARTBEAT = 15.0           # seconds between the process's heartbeats in StreamState
CONNECT_TIMEOUT = 20.0     # seconds to reach the broker at start
DOWN_AFTER = 30.0          # seconds with every broker unreachable before the process gives up


class StreamFailed(Exception):
    """One line: why the stream's process cannot go on."""


class Listener:
    def __init__(self, stream, say):
        self.stream, self.say = stream, say
        self.stopping = False
        self.brokers_down_since = None
        self.errors_said = set()
        self.handlers = {topic: handler_function(stream, topic, path) for topic, path in stream.handlers.items()}
        self.config, self.start, self.timeout = consumer_settings(stream)
        self.config['error_cb'] = self._error
        self.config['logger'] = _KafkaLog(say)
        self.consumer = None
        self.next_beat = 0.0

    def run(self):
        """Returns the exit status."""
        from confluent_kafka import Consumer

        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        shipped.set_current_stream(self.stream.name)
        state = ensure_state(self.stream.name)
        self.first_started_at = state.first_started_at
        self.consumer = Consumer(self.config)
        try:
            self._connect()
            self.consumer.subscribe(list(self.handlers), on_assign=self._assigned, on_revoke=self._revoked)
            while not self.stopping:
                self._beat()
                # Waits for the first message only, then takes what has arrived with it: a
                # batch under load, no wait for a full one when alerts come one by one.
                messages = self.consumer.consume(num_messages=1, timeout=POLL)
                if messages:
                    messages += self.consumer.consume(num_messages=BATCH - 1, timeout=0)
                good = [message for message in messages if self._good(message)]
                if good:
                    self.errors_said.clear()
                    self.brokers_down_since = None
                    self._store(good)
                self._check_brokers()
        finally:
            self._close()
        self.say.out(f'stream {self.stream.name}: stopped')
        return 0

    def _connect(self):
        try:
            self.consumer.list_topics(timeout=CONNECT_TIMEOUT)
        except Exception as error:
            raise StreamFailed(f'cannot reach {self.config.get("bootstrap.servers")}: {one_line(error)}')
        now = timezone.now()
        StreamState.objects.filter(name=self.stream.name).update(connected_at=now, heartbeat_at=now,
                                                                 host=liveness.this_host())
        self.say.out(f'stream {self.stream.name}: connected to {self.config.get("bootstrap.servers")}, group '
                     f'{self.config["group.id"]}, topics {", ".join(self.handlers)}')

    def _store(self, messages):
        handled = handle_batch(self.stream.name, messages, self.handlers, self.timeout)
        if handled.dead:
            self.say.err(f'stream {self.stream.name}: {handled.dead} message(s) kept as dead letters; last: '
                         f'{handled.last_error}')
        self._commit(messages)

    def _commit(self, messages):
        from confluent_kafka import KafkaException, TopicPartition

        last = {}
        for message in messages:
            key = (message.topic(), message.partition())
            last[key] = max(last.get(key, -1), message.offset())
        try:
            self.consumer.commit(offsets=[TopicPartition(topic, partition, offset + 1)
                                          for (topic, partition), offset in last.items()], asynchronous=False)
        except KafkaException as error:
            # Stored already: a message delivered again is recognised by its stored offset.
            self.say.err(f'stream {self.stream.name}: commit to Kafka failed, the TOM keeps the offsets: '
                         f'{one_line(error)}')

    def _good(self, message):
        error = message.error()
        if error is None:
            return True
        self.say.err(f'stream {self.stream.name}: Kafka: {error.name()}: {one_line(error.str())}')
        return False

    def _error(self, error):
        """librdkafka's error callback (called from consume, in this thread): each kind said
        once until the stream reads again, not at every reconnection attempt."""
        from confluent_kafka import KafkaError

        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.brokers_down_since = self.brokers_down_since or time.monotonic()
        if error.name() not in self.errors_said:
            self.errors_said.add(error.name())
            self.say.err(f'stream {self.stream.name}: Kafka: {error.name()}: {one_line(error.str())}')

    def _check_brokers(self):
        if self.brokers_down_since is None:
            return
        if time.monotonic() - self.brokers_down_since > DOWN_AFTER:
            try:
                self.consumer.list_topics(timeout=2)
                self.brokers_down_since = None
                self.errors_said.clear()
                self.say.out(f'stream {self.stream.name}: the broker answers again')
                return
            except Exception:
                pass
            raise StreamFailed(f'every broker of {self.config.get("bootstrap.servers")} has been unreachable '
                               f'for {DOWN_AFTER:g} s')

    def _assigned(self, consumer, partitions):
        """Each partition starts after the last message the TOM stored of it."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

        stored = {(row.topic, row.partition): row.offset for row in StreamOffset.objects.filter(
            stream=self.stream.name, topic__in={p.topic for p in partitions}) if row.offset is not None}
        committed = {(p.topic, p.partition): p.offset for p in consumer.committed(partitions, timeout=10)}
        by_time = []
        for partition in partitions:
            key = (partition.topic, partition.partition)
            if key in stored:
                partition.offset = stored[key] + 1
            elif committed.get(key, -1) >= 0:
                partition.offset = committed[key]
            elif self.start == EARLIEST:
                partition.offset = OFFSET_BEGINNING
            else:
                by_time.append(partition)
        if by_time:
            moment = self.first_started_at if self.start == LATEST else self.start
            milliseconds = int(moment.timestamp() * 1000)
            found = consumer.offsets_for_times([TopicPartition(p.topic, p.partition, milliseconds) for p in by_time],
                                               timeout=10)
            for partition, offset in zip(by_time, found, strict=True):
                partition.offset = offset.offset if offset.offset >= 0 else OFFSET_END
        consumer.assign(partitions)
        self.say.out(f'stream {self.stream.name}: reading ' + ', '.join(
            f'{p.topic}[{p.partition}] from {_offset_words(p.offset)}' for p in partitions))

    def _revoked(self, consumer, partitions):
        self.say.out(f'stream {self.stream.name}: partitions handed back: '
                     + ', '.join(f'{p.topic}[{p.partition}]' for p in partitions))

    def _beat(self):
        now = time.monotonic()
        if now < self.next_beat:
            return
        self.next_beat = now + HEARTBEAT
        close_old_connections()
        StreamState.objects.filter(name=self.stream.name).update(heartbeat_at=timezone.now(),
                                                                 host=liveness.this_host())

    def _stop(self, signum, frame):
        self.stopping = True

    def _close(self):
        try:
            self.consumer.close()  # leaves the group: its partitions go to a replica at once
        except Exception:
            pass
        try:
            StreamState.objects.filter(name=self.stream.name, host=liveness.this_host()).update(heartbeat_at=None)
        except DatabaseError:
            pass


class _KafkaLog:
    """librdkafka's log lines, through ours (a logging.Logger-like object): warnings and worse,
    less its connection failures (FAIL), which the error callback says once."""

    def __init__(self, say):
        self.say = say

    def log(self, level, message, *args):
        import logging

        if level < logging.WARNING or (args and args[0] == 'FAIL'):
            return
        self.say.err(f'kafka: {one_line(message % args if args else message)}')


def _offset_words(offset):
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

    return {OFFSET_BEGINNING: 'the beginning', OFFSET_END: 'the end'}.get(offset, f'offset {offset}')


def ensure_state(name):
    state, _ = StreamState.objects.get_or_create(name=name, defaults={'first_started_at': timezone.now()})
    return state


def run_foreign(stream, say):
    """Another AlertStream class: its own listen(), which is expected never to return."""
    klass = import_string(stream.class_path)
    ensure_state(stream.name)
    now = timezone.now()
    StreamState.objects.filter(name=stream.name).update(connected_at=now, heartbeat_at=now,
                                                        host=liveness.this_host())
    say.out(f'stream {stream.name}: running {stream.class_path}.listen() (its own commits)')
    klass(**stream.options).listen()
    raise StreamFailed(f'{stream.class_path}.listen() returned')
