"""A real Apache Kafka broker on 127.0.0.1 for the alert-stream tests: Kafka 4.4 in KRaft mode
(controller and broker in one JVM, no ZooKeeper) from the jars tests/kafka/fetch.sh keeps in
the user's cache folder, on Java 17. It can be stopped and started again on the same data
folder (a broker restart under a running stream), or killed."""
import base64
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, stop_process

FETCH = REPO / 'tests' / 'kafka' / 'fetch.sh'

LOG4J = """\
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d %p %c{{1}}: %m%n
"""


def broker_jars():
    """The folder of the broker's jars (fetched once, then cached); fails the test clearly
    when Java or Maven is missing."""
    result = subprocess.run([str(FETCH)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f'tests/kafka/fetch.sh failed: {result.stderr.strip()[-500:]}')
    return Path(result.stdout.strip()) / 'lib'


class KafkaBroker:
    def __init__(self, directory, partitions=2, listen='127.0.0.1', advertise='127.0.0.1'):
        """listen, advertise: the address clients connect to and the one the broker gives them
        (another than 127.0.0.1 for containers: the Docker network's gateway)."""
        self.directory = Path(directory)
        self.lib = broker_jars()
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f'{advertise}:{self.port}'
        self.process = None
        self.partitions = partitions
        self.config = self.directory / 'server.properties'
        self.config.write_text('\n'.join([
            'process.roles=broker,controller',
            'node.id=1',
            f'controller.quorum.voters=1@127.0.0.1:{self.controller_port}',
            f'listeners=PLAINTEXT://{listen}:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}',
            f'advertised.listeners=PLAINTEXT://{advertise}:{self.port}',
            'controller.listener.names=CONTROLLER',
            'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
            'inter.broker.listener.name=PLAINTEXT',
            f'log.dirs={self.directory / "data"}',
            f'num.partitions={partitions}',
            'offsets.topic.replication.factor=1',
            'offsets.topic.num.partitions=1',
            'transaction.state.log.replication.factor=1',
            'transaction.state.log.min.isr=1',
            'group.initial.rebalance.delay.ms=0',
            'auto.create.topics.enable=true',
            '',
        ]))
        (self.directory / 'log4j2.properties').write_text(LOG4J.format(log=self.directory / 'broker.log'))
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip('=')
        self._java('kafka.tools.StorageTool', 'format', '--cluster-id', cluster_id, '--config', str(self.config),
                   wait=True)

    def _java(self, main, *args, wait=False):
        command = ['java', '-Xmx512m', '-XX:+UseSerialGC',
                   f'-Dlog4j2.configurationFile={self.directory}/log4j2.properties',
                   '-cp', f'{self.lib}/*', main, *args]
        with open(self.directory / 'java.out', 'ab') as output:  # the child keeps its own copy
            if wait:
                subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)
                return None
            return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, seconds=90):
        """Starts the broker and waits until it answers a metadata request with itself."""
        self.process = self._java('kafka.Kafka', str(self.config))
        self.wait_ready(seconds)
        return self

    def wait_ready(self, seconds=90):
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({'bootstrap.servers': self.bootstrap, 'log_level': 0})
        deadline = time.monotonic() + seconds
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f'the Kafka broker exited with status {self.process.returncode}: '
                                     f'{self.tail()}')
            try:
                if admin.list_topics(timeout=2).brokers:
                    return
            except Exception:  # refused, timed out: not up yet
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f'the Kafka broker did not answer within {seconds} s: {self.tail()}')
            time.sleep(0.2)

    def stop(self):
        """A clean stop (SIGTERM): the broker writes its state and leaves."""
        if self.process is not None:
            stop_process(self.process, 30)
            self.process = None

    def kill(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self):
        self.stop()
        self.start()

    def create_topic(self, name, partitions=None):
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({'bootstrap.servers': self.bootstrap})
        future = admin.create_topics([NewTopic(name, num_partitions=partitions or self.partitions,
                                               replication_factor=1)])[name]
        future.result(timeout=30)

    def producer(self):
        from confluent_kafka import Producer

        # Idempotent: a retry after a broker restart is not a second copy in the log.
        return Producer({'bootstrap.servers': self.bootstrap, 'enable.idempotence': True, 'linger.ms': 5,
                         'log_level': 3})

    def produce(self, topic, values, key=None):
        """Produces each value (bytes or str) and waits until the broker has them all."""
        producer = self.producer()
        for value in values:
            producer.produce(topic, value=value, key=key)
            producer.poll(0)
        left = producer.flush(60)
        assert left == 0, f'{left} message(s) not acknowledged by the broker'

    def tail(self, lines=20):
        try:
            text = (self.directory / 'java.out').read_text(errors='replace')
        except OSError:
            return ''
        return ' | '.join(text.strip().splitlines()[-lines:])


def declaration(bootstrap, topic, handler='myapp.streams.handlers.save_alert', name='alerts', extra='', options=''):
    """A streams.toml declaring one KafkaStream that reads topic from its start."""
    return f"""
[[stream]]
name = "{name}"
class = "myapp.streams.kafka.KafkaStream"
{extra}
[stream.options]
BOOTSTRAP_SERVERS = "{bootstrap}"
START = "earliest"
{options}
[stream.options.TOPIC_HANDLERS]
"{topic}" = "{handler}"
"""

