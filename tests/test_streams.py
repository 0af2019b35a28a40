"""Alert streams against a real Kafka broker (Apache Kafka 4.4, KRaft, on 127.0.0.1) through
the real confluent-kafka client, run by the real cron program (`jobs cron`): every alert
produced is stored exactly once, or kept as a dead letter, whatever is killed or restarted."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, cron_env, run_job, wait_for
from tests.kafka_broker import KafkaBroker

pytestmark = pytest.mark.kafka

CRONTAB = '@yearly python manage.py jobs run --no-catch-up clearsessions\n'


@pytest.fixture(scope='module')
def broker(tmp_path_factory):
    server = KafkaBroker(tmp_path_factory.mktemp('kafka')).start()
    yield server
    server.stop()


@pytest.fixture
def topic(request, broker):
    name = f'alerts.{request.node.name[5:40]}'.replace('_', '-')
    broker.create_topic(name)
    return name


def declare(path, broker, topic, handler='tests.stream_handlers.store_or_fail', name='alerts', extra='',
            options=''):
    path.write_text(f'''
[[stream]]
name = "{name}"
class = "myapp.streams.kafka.KafkaStream"
{extra}
[stream.options]
BOOTSTRAP_SERVERS = "{broker.bootstrap}"
START = "earliest"
{options}
[stream.options.TOPIC_HANDLERS]
"{topic}" = "{handler}"
''')


@pytest.fixture
def streams_env(tom_env, tmp_path):
    return {**tom_env, 'STREAMS_FILE': str(tmp_path / 'streams.toml'), 'STREAMS_RESTART_MAX': '2s',
            'STREAM_FIX': str(tmp_path / 'fixed'), 'STREAM_HANDLING': str(tmp_path / 'handling')}


@pytest.fixture
def cron(streams_env, tmp_path):
    """Starts a cron program (`jobs cron`) with the streams declared; stopped after the test."""
    started = []

    def start():
        crontab = tmp_path / 'crontab'
        crontab.write_text(CRONTAB)
        log = tmp_path / f'cron-{len(started)}.log'
        with log.open('w') as out:
            process = subprocess.Popen([sys.executable, str(REPO / 'manage.py'), 'jobs', 'cron'], cwd=REPO,
                                       env={**cron_env(streams_env, tmp_path, crontab),
                                            'CRON_HEALTH_FILE': str(tmp_path / f'health-{len(started)}.json')},
                                       stdout=out, stderr=subprocess.STDOUT)
        process.log = log
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def alerts(topic):
    from myapp.models import StreamAlert

    return list(StreamAlert.objects.filter(topic=topic).values_list('value', flat=True))


def letters(topic):
    from myapp.models import DeadLetter

    return list(DeadLetter.objects.filter(topic=topic).values_list('value', flat=True))


def assert_each_once(topic, produced, dead=()):
    """Every value produced is stored once, or is a dead letter once, and nothing else."""
    stored = sorted(bytes(value) for value in alerts(topic))
    kept = sorted(bytes(value) for value in letters(topic))
    expected = sorted(value.encode() for value in produced if value not in dead)
    assert stored == expected
    assert kept == sorted(value.encode() for value in dead)


def stored_count(topic, count):
    return lambda: len(alerts(topic)) + len(letters(topic)) >= count


def stream_pids(name='alerts'):
    found = subprocess.run(['pgrep', '-f', f'manage.py streams listen {name}$'], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_every_alert_is_stored_once_and_a_failing_one_is_a_dead_letter(broker, topic, streams_env, cron, tmp_path):
    from myapp.models import DeadLetter, StreamState

    declare(Path(streams_env['STREAMS_FILE']), broker, topic)
    produced = [f'alert {n}' for n in range(300)]
    produced[100], produced[200] = 'bad one', 'bad two'
    broker.produce(topic, produced)
    program = cron()
    wait_for('300 alerts handled', stored_count(topic, 300), seconds=90)
    assert_each_once(topic, produced, dead={'bad one', 'bad two'})
    letter = DeadLetter.objects.get(topic=topic, value=b'bad one')
    assert letter.error == "ValueError: cannot read b'bad one'"
    assert letter.handler == 'tests.stream_handlers.store_or_fail'
    state = StreamState.objects.get(name='alerts')
    assert (state.messages, state.dead_letters, state.restarts) == (300, 2, 0)

    # The stream went on past them; its lines are tagged with its name.
    broker.produce(topic, ['alert after'])
    wait_for('the alert after the dead letters', stored_count(topic, 301))
    log = program.log.read_text()
    assert 'stream alerts: 2 message(s) kept as dead letters' in log or 'stream alerts: 1 message(s)' in log

    # Once the cause is fixed, a retry stores it, once.
    Path(streams_env['STREAM_FIX']).touch()
    retried = run_job(streams_env, 'streams', 'retry', str(letter.pk))
    assert retried.returncode == 0, retried.stderr
    again = run_job(streams_env, 'streams', 'retry', str(letter.pk))
    assert again.returncode == 1 and 'was stored already' in again.stderr
    assert sorted(bytes(v) for v in alerts(topic)).count(b'bad one') == 1
