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
from tests.kafka_broker import KafkaBroker, declaration

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


def declare(path, broker, topic, handler='tests.stream_handlers.store_or_fail', **more):
    path.write_text(declaration(broker.bootstrap, topic, handler, **more))


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


def test_a_stream_killed_mid_handling_is_restarted_and_stores_that_alert_once(broker, topic, streams_env, cron):
    from myapp.models import StreamState

    declare(Path(streams_env['STREAMS_FILE']), broker, topic, handler='tests.stream_handlers.store_slowly_once')
    produced = [f'alert {n}' for n in range(200)]
    produced[120] = 'slow'
    broker.produce(topic, produced)
    program = cron()
    handling = Path(streams_env['STREAM_HANDLING'])
    wait_for('the handler to hold the slow alert', handling.exists, seconds=90)
    wait_for('its pid', lambda: handling.read_text().strip())
    killed_at = time.monotonic()
    os.kill(int(handling.read_text()), signal.SIGKILL)
    wait_for('every alert stored after the restart', stored_count(topic, 200), seconds=90)
    assert_each_once(topic, produced)
    assert StreamState.objects.get(name='alerts').restarts == 1
    log = program.log.read_text()
    assert 'cron: stream alerts ended (killed by SIGKILL after' in log
    assert 'starting it again in 1 s' in log
    print(f'killed to all stored: {time.monotonic() - killed_at:.1f} s')


def test_a_broker_restart_loses_nothing(broker, topic, streams_env, cron):
    declare(Path(streams_env['STREAMS_FILE']), broker, topic)
    first = [f'before {n}' for n in range(100)]
    broker.produce(topic, first)
    cron()
    wait_for('the first alerts', stored_count(topic, 100), seconds=90)
    broker.restart()
    second = [f'after {n}' for n in range(100)]
    broker.produce(topic, second)
    wait_for('the alerts produced after the restart', stored_count(topic, 200), seconds=120)
    time.sleep(2)  # nothing more arrives: no alert twice
    assert_each_once(topic, first + second)


def test_two_replicas_share_the_partitions_and_handle_each_alert_once(broker, topic, streams_env, cron):
    declare(Path(streams_env['STREAMS_FILE']), broker, topic)
    first, second = cron(), cron()
    wait_for('each replica to be given partitions', lambda: all(
        'stream alerts: reading' in program.log.read_text() for program in (first, second)), seconds=90)
    produced = [f'alert {n}' for n in range(1000)]
    broker.produce(topic, produced)
    wait_for('1000 alerts', stored_count(topic, 1000), seconds=120)

    # One replica stops (a scale down): the other takes every partition; nothing is lost.
    first.terminate()
    first.wait(timeout=60)
    more = [f'more {n}' for n in range(500)]
    broker.produce(topic, more)
    wait_for('the alerts produced after the scale down', stored_count(topic, 1500), seconds=120)
    time.sleep(2)
    assert_each_once(topic, produced + more)


def test_a_paused_stream_stops_and_goes_on_where_it_stopped(broker, topic, streams_env, cron):
    declare(Path(streams_env['STREAMS_FILE']), broker, topic)
    program = cron()
    broker.produce(topic, ['first'])
    wait_for('the first alert', stored_count(topic, 1), seconds=90)
    paused = run_job(streams_env, 'streams', 'pause', 'alerts', '--reason', 'broker maintenance')
    assert paused.returncode == 0, paused.stderr
    wait_for('the stream process to stop', lambda: not stream_pids(), seconds=30)
    broker.produce(topic, [f'while paused {n}' for n in range(20)])
    time.sleep(8)
    assert len(alerts(topic)) == 1
    assert 'cron: stream alerts paused: stopping its process' in program.log.read_text()
    resumed = run_job(streams_env, 'streams', 'resume', 'alerts')
    assert resumed.returncode == 0, resumed.stderr
    wait_for('the alerts produced while paused', stored_count(topic, 21), seconds=60)
    assert_each_once(topic, ['first'] + [f'while paused {n}' for n in range(20)])


def test_a_silent_stream_fails_the_check_and_is_told_once(broker, topic, streams_env, cron, tmp_path):
    from tests.notify_endpoint import JsonEndpoint

    endpoint = JsonEndpoint()
    try:
        env = {**streams_env, 'JOBS_NOTIFY': endpoint.apprise_url}
        declare(Path(env['STREAMS_FILE']), broker, topic, extra='longest_silence = "20s"')
        streams_env.update(env)
        cron(), cron()
        broker.produce(topic, ['hello'])
        wait_for('the first alert', stored_count(topic, 1), seconds=90)
        assert run_job(env, 'jobs', 'check').returncode == 0
        silent = wait_for('the check to find the stream silent',
                          lambda: (result := run_job(env, 'jobs', 'check')).returncode == 1 and result, seconds=60)
        assert 'SILENT stream alerts: no message since' in silent.stderr
        wait_for('the notification', lambda: 'mytom: alert stream alerts is silent' in endpoint.titles(), seconds=60)
        broker.produce(topic, ['hello again'])
        wait_for('the recovery notification',
                 lambda: 'mytom: alert stream alerts has recovered' in endpoint.titles(), seconds=60)
        time.sleep(3)
        assert endpoint.titles().count('mytom: alert stream alerts is silent') == 1  # two replicas, told once
        # Heard again (within its 20 s, however slow this machine is), the check passes.
        broker.produce(topic, ['hello once more'])
        wait_for('the check to pass', lambda: run_job(env, 'jobs', 'check').returncode == 0, seconds=30)
    finally:
        endpoint.stop()


def test_tom_alertstreams_gcn_class_runs_at_least_once_against_a_plain_broker(broker, topic, streams_env, cron):
    """TOM Toolkit's GCN class, declared as in ALERT_STREAMS, pointed at this broker (gcn-kafka
    takes the broker and its protocol from CONFIG): our loop runs it, commits after storing."""
    Path(streams_env['STREAMS_FILE']).write_text(f'''
[[stream]]
name = "gcn"
class = "tom_alertstreams.alertstreams.gcn.GCNClassicAlertStream"
[stream.options]
GCN_CLASSIC_CLIENT_ID = "test-client"
GCN_CLASSIC_CLIENT_SECRET = "test-secret"
CONFIG = {{ "bootstrap.servers" = "{broker.bootstrap}", "security.protocol" = "plaintext" }}
[stream.options.TOPIC_HANDLERS]
"{topic}" = "myapp.streams.handlers.save_alert"
''')
    cron()
    wait_for('the gcn stream process', lambda: stream_pids('gcn'), seconds=60)
    from myapp.models import StreamState

    wait_for('it to connect', lambda: StreamState.objects.filter(name='gcn').exclude(heartbeat_at=None).exists())
    time.sleep(3)  # "latest": from when the TOM first ran the stream
    produced = [f'notice {n}' for n in range(50)]
    broker.produce(topic, produced)
    wait_for('50 notices', stored_count(topic, 50), seconds=90)
    assert_each_once(topic, produced)


def test_a_bad_edit_is_refused_and_the_stream_goes_on(broker, topic, streams_env, cron):
    path = Path(streams_env['STREAMS_FILE'])
    declare(path, broker, topic)
    program = cron()
    broker.produce(topic, ['one'])
    wait_for('the first alert', stored_count(topic, 1), seconds=90)
    declare(path, broker, topic, handler='tests.stream_handlers.no_such_handler')
    wait_for('the refusal', lambda: 'change refused, the running streams go on' in program.log.read_text(), seconds=30)
    broker.produce(topic, ['two'])
    wait_for('the second alert', stored_count(topic, 2), seconds=30)
    checked = run_job(streams_env, 'streams', 'check')
    assert checked.returncode == 1
    assert checked.stderr.strip().splitlines()[-1] == (
        "CommandError: stream alerts: the handler of '" + topic + "', 'tests.stream_handlers.no_such_handler', "
        "does not import: Module \"tests.stream_handlers\" does not define a \"no_such_handler\" attribute/class")
