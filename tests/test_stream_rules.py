"""The alert streams' rules, in this process: the declaration and its one-line errors, a batch
stored once whatever Kafka delivers again, dead letters and their retry, when a stream is down
or silent and who is told, and what the Jobs page, /api/jobs/ and /metrics show to whom."""
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from tom_targets.models import Target

from myapp.models import DeadLetter, JobAlert, StreamAlert, StreamHour, StreamOffset, StreamState
from myapp.streams import declaration, state, store
from myapp.streams.handlers import save_alert, set_current_stream
from myapp.streams.message import KeptMessage

GOOD = '''
[[stream]]
name = "gcn"
class = "myapp.streams.kafka.KafkaStream"
longest_silence = "2h"
[stream.options]
BOOTSTRAP_SERVERS = "${KAFKA_SERVERS}"
SECURITY_PROTOCOL = "SASL_SSL"
SASL_USERNAME = "tom"
SASL_PASSWORD = "${KAFKA_PASSWORD}"
[stream.options.TOPIC_HANDLERS]
"gcn.notices" = "myapp.streams.handlers.save_alert"
'''


def load(tmp_path, text, environ=None, alert_streams=()):
    path = tmp_path / 'streams.toml'
    path.write_text(text)
    return declaration.load(path, environ if environ is not None else {'KAFKA_SERVERS': 'kafka:9092',
                                                                       'KAFKA_PASSWORD': 'pw'}, list(alert_streams))


def error_of(tmp_path, text, environ=None, alert_streams=()):
    with pytest.raises(declaration.DeclarationError) as raised:
        load(tmp_path, text, environ, alert_streams)
    message = str(raised.value)
    assert '\n' not in message
    return message


def test_a_declaration_reads_variables_and_secret_files(tmp_path):
    secret = tmp_path / 'password'
    secret.write_text('from-a-file\n')
    [stream] = load(tmp_path, GOOD, {'KAFKA_SERVERS': 'kafka:9092', 'KAFKA_PASSWORD_FILE': str(secret)})
    assert (stream.name, stream.longest_silence, stream.ours) == ('gcn', 7200.0, True)
    assert stream.options['BOOTSTRAP_SERVERS'] == 'kafka:9092'
    assert stream.options['SASL_PASSWORD'] == 'from-a-file'


@pytest.mark.parametrize('change, expected', [
    (('myapp.streams.kafka.KafkaStream', 'myapp.streams.NoSuchStream'),
     "stream gcn: class 'myapp.streams.NoSuchStream' does not import"),
    (('myapp.streams.kafka.KafkaStream', 'myapp.models.StreamAlert'),
     "stream gcn: 'myapp.models.StreamAlert' is not an alert stream class (an AlertStream)"),
    (('myapp.streams.handlers.save_alert', 'myapp.streams.handlers.save_everything'),
     "stream gcn: the handler of 'gcn.notices', 'myapp.streams.handlers.save_everything', does not import"),
    (('SASL_USERNAME', 'SASL_USER'), "stream gcn: myapp.streams.kafka.KafkaStream takes no option 'SASL_USER'"),
    (('BOOTSTRAP_SERVERS = "${KAFKA_SERVERS}"', ''), "stream gcn: option 'BOOTSTRAP_SERVERS' is missing"),
    (('SECURITY_PROTOCOL = "SASL_SSL"', 'SECURITY_PROTOCOL = "SASL_SSL"\nSTART = "yesterday"'),
     "stream gcn: START 'yesterday' is not earliest, latest or a time"),
    (('longest_silence = "2h"', 'longest_silence = "soon"'), "streams.toml: stream gcn: longest_silence: 'soon'"),
    (('name = "gcn"', 'name = "GCN notices"'), "the name 'GCN notices' must be lower-case"),
    (('${KAFKA_PASSWORD}', '${NOT_SET}'), 'stream gcn: the variable NOT_SET (or NOT_SET_FILE) is not set'),
    (('longest_silence', 'silence'), "unknown key 'silence'"),
    (('[[stream]]', '[[streams]]'), "unknown table 'streams' (streams are [[stream]] tables)"),
    (('name = "gcn"', 'name = "gcn'), 'not valid TOML'),
])
def test_each_mistake_is_one_line_naming_it(tmp_path, change, expected):
    assert expected in error_of(tmp_path, GOOD.replace(*change))


def test_alert_streams_in_settings_run_too_and_a_name_is_declared_once(tmp_path):
    legacy = {'NAME': 'myapp.streams.kafka.KafkaStream', 'OPTIONS': {
        'STREAM_NAME': 'gcn', 'BOOTSTRAP_SERVERS': 'kafka:9092',
        'TOPIC_HANDLERS': {'gcn.notices': 'myapp.streams.handlers.save_alert'}}}
    assert error_of(tmp_path, GOOD, alert_streams=[legacy]) == 'stream gcn: declared twice (settings.ALERT_STREAMS)'
    legacy['OPTIONS']['STREAM_NAME'] = 'lvc'
    streams = load(tmp_path, GOOD, alert_streams=[legacy, {**legacy, 'ACTIVE': False,
                                                           'OPTIONS': {**legacy['OPTIONS'], 'STREAM_NAME': 'old'}}])
    assert [(stream.name, stream.active) for stream in streams] == [('gcn', True), ('lvc', True), ('old', False)]


def message(offset, value=b'alert', topic='gcn.notices', partition=0):
    return KeptMessage(topic, partition, offset, b'key', value, [['_id', 'abc'], ['raw', 'ff00', 'hex']],
                       timezone.now())


def make_target_then(fail):
    """A handler storing a target of its own, then failing when fail(message)."""
    def handler(msg):
        Target.objects.create(name=f'from {msg.offset()}', type='SIDEREAL', ra=1, dec=2)
        if fail(msg):
            raise KeyError('no such field: ra')
        save_alert(msg)
    return handler


@pytest.fixture
def gcn(db):
    set_current_stream('gcn')
    return StreamState.objects.create(name='gcn', first_started_at=timezone.now())


def test_a_batch_delivered_again_is_not_stored_twice(gcn):
    handlers = {'gcn.notices': make_target_then(lambda msg: False)}
    batch = [message(n) for n in range(5)]
    first = store.handle_batch('gcn', batch, handlers, 5)
    again = store.handle_batch('gcn', batch + [message(5)], handlers, 5)
    assert (first.stored, again.stored, again.skipped) == (5, 1, 5)
    assert StreamAlert.objects.count() == 6 and Target.objects.count() == 6
    assert StreamOffset.objects.get(stream='gcn', topic='gcn.notices', partition=0).offset == 5
    alert = StreamAlert.objects.get(offset=0)
    assert KeptMessage.of(alert).headers() == [('_id', b'abc'), ('raw', b'\xff\x00')]
    gcn.refresh_from_db()
    assert (gcn.messages, gcn.dead_letters) == (6, 0)
    assert StreamHour.objects.get(stream='gcn').messages == 6


def test_a_failing_handler_leaves_nothing_of_its_own_and_its_message_is_a_dead_letter(gcn):
    handlers = {'gcn.notices': make_target_then(lambda msg: msg.offset() == 1)}
    handled = store.handle_batch('gcn', [message(0), message(1, b'{"broken": 1}'), message(2)], handlers, 5)
    assert (handled.stored, handled.dead) == (2, 1)
    assert sorted(Target.objects.values_list('name', flat=True)) == ['from 0', 'from 2']
    letter = DeadLetter.objects.get()
    assert (letter.offset, bytes(letter.value), letter.error) == (1, b'{"broken": 1}', "KeyError: 'no such field: ra'")
    assert 'raise KeyError' in letter.traceback
    assert StreamOffset.objects.get().offset == 2  # the stream goes on past it
    gcn.refresh_from_db()
    assert gcn.dead_letters == 1 and 'gcn.notices[0]@1: KeyError' in gcn.last_error


def test_a_handler_past_its_timeout_is_a_dead_letter(gcn):
    handled = store.handle_batch('gcn', [message(0)], {'gcn.notices': lambda msg: time.sleep(5)}, 0.2)
    assert handled.dead == 1
    assert DeadLetter.objects.get().error == 'the handler ran longer than its HANDLER_TIMEOUT (0.2 s)'


def test_a_retry_stores_a_dead_letter_once_its_cause_is_fixed(gcn, settings, tmp_path):
    settings.STREAMS_FILE = str(tmp_path / 'none.toml')
    letter = DeadLetter.objects.create(stream='gcn', topic='gcn.notices', partition=0, offset=4, value=b'x',
                                       handler='tests.stream_handlers.store_or_fail', error='...',
                                       failed_at=timezone.now())
    assert state.retry(letter.pk, 'pi') == ''
    letter.refresh_from_db()
    assert letter.resolved_by == 'pi' and StreamAlert.objects.filter(offset=4, stream='gcn').count() == 1
    with pytest.raises(state.RetryRefused, match='stored already, by pi'):
        state.retry(letter.pk, 'pi')


def rows_at(now):
    return {row.name: row for row in state.report(now).rows}


def test_down_silent_and_paused_by_the_clock(db, settings):
    now = timezone.now()
    StreamState.objects.create(name='alerts', first_started_at=now - timedelta(hours=5), longest_silence=3600,
                               connected_at=now - timedelta(hours=3), heartbeat_at=now - timedelta(seconds=10),
                               last_message_at=now - timedelta(minutes=30))
    assert rows_at(now)['alerts'].status(now) == state.OK
    assert rows_at(now)['alerts'].status(now + timedelta(minutes=2, seconds=11)) == state.DOWN  # no heartbeat
    later = now + timedelta(minutes=31)
    StreamState.objects.update(heartbeat_at=later)
    assert rows_at(later)['alerts'].status(later) == state.SILENT  # connected, but 1h of silence allowed
    assert rows_at(later)['alerts'].problem(later).startswith('SILENT stream alerts: no message since ')
    StreamState.objects.update(heartbeat_at=None, last_error='exit status 1: cannot reach 127.0.0.1:9')
    row = rows_at(now)['alerts']
    assert row.status(now) == state.DOWN
    assert row.problem(now).startswith('DOWN stream alerts: no process of it connected since ')
    assert row.problem(now).endswith('last error: exit status 1: cannot reach 127.0.0.1:9')
    state.pause('alerts', 'pi', 'broker upgrade')
    assert rows_at(now)['alerts'].status(now) == state.PAUSED and not state.report(now).problems


def test_a_change_is_recorded_once_and_its_recovery_once(db):
    now = timezone.now()
    StreamState.objects.create(name='alerts', first_started_at=now - timedelta(hours=1), connected_at=now,
                               heartbeat_at=now - timedelta(minutes=5))
    assert state.record_changes(state.report(now)) == ['alerts']
    assert state.record_changes(state.report(now)) == []  # another replica's check: nothing new
    alert = JobAlert.objects.get(name='stream alerts')
    assert alert.state == 'down' and alert.title == 'mytom: alert stream alerts is down'
    StreamState.objects.update(heartbeat_at=now)
    assert state.record_changes(state.report(now)) == ['alerts']
    assert JobAlert.objects.get(name='stream alerts').title == 'mytom: alert stream alerts has recovered'


@pytest.fixture
def visitors(db):
    now = timezone.now()
    StreamState.objects.create(name='alerts', first_started_at=now, connected_at=now, heartbeat_at=now,
                               last_message_at=now, messages=42, restarts=3, dead_letters=1,
                               last_error='gcn.notices[0]@7: KeyError: SN 2026secret')
    StreamHour.objects.create(stream='alerts', hour=now.replace(minute=0, second=0, microsecond=0), messages=42)
    letter = DeadLetter.objects.create(stream='alerts', topic='gcn.notices', partition=0, offset=7,
                                       value=b'SN 2026secret', handler='myapp.streams.handlers.save_alert',
                                       error='KeyError: SN 2026secret', failed_at=now)
    staff = User.objects.create_user('staff', password='pw', is_staff=True)
    user = User.objects.create_user('observer', password='pw')
    return letter, staff, user


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_jobs_page_shows_the_streams_and_staff_alone_their_errors(visitors):
    letter, staff, user = visitors
    for who, sees_errors in ((staff, True), (user, False)):
        page = logged_in(who).get('/jobs/').content.decode()
        assert 'id="streams-table"' in page and 'data-stream="alerts"' in page
        assert '<td class="small">42</td>' in page  # per hour
        assert ('SN 2026secret' in page) is sees_errors
        assert (f'dead-letter-{letter.pk}' in page) is sees_errors
    answer = logged_in(user).get('/api/jobs/').json()['streams'][0]
    assert answer['status'] == 'ok' and answer['restarts'] == 3 and 'last_error' not in answer
    assert logged_in(staff).get('/api/jobs/').json()['streams'][0]['last_error'].endswith('2026secret')


def test_only_staff_retry_or_pause_and_a_refusal_changes_nothing(visitors, settings, tmp_path):
    letter, staff, user = visitors
    for client in (Client(), logged_in(user)):
        assert client.post(f'/api/jobs/dead-letters/{letter.pk}/retry/').status_code in (401, 403)
        assert client.post('/api/jobs/streams/alerts/pause/').status_code in (401, 403)
    assert not StreamAlert.objects.exists() and StreamState.objects.get().paused_at is None
    retried = logged_in(staff).post(f'/api/jobs/dead-letters/{letter.pk}/retry/', {}, content_type='application/json')
    assert retried.json() == {'id': letter.pk, 'stored': True}
    assert StreamAlert.objects.get().offset == 7
    assert logged_in(staff).post('/api/jobs/streams/alerts/pause/', {'reason': 'upgrade'}).status_code == 303
    assert StreamState.objects.get().pause_reason == 'upgrade'
    assert logged_in(staff).post('/api/jobs/streams/nosuch/pause/').status_code == 404


def test_metrics_count_each_stream(visitors, client, settings):
    settings.METRICS_TOKEN = 'token'
    text = client.get('/metrics', HTTP_AUTHORIZATION='Bearer token').content.decode()
    found = {(sample.name, tuple(sample.labels.items())): sample.value
             for family in text_string_to_metric_families(text) for sample in family.samples}
    labels = (('stream', 'alerts'),)
    assert found[('tom_stream_messages_total', labels)] == 42
    assert found[('tom_stream_restarts_total', labels)] == 3
    assert found[('tom_stream_dead_letters_total', labels)] == 1
    assert found[('tom_stream_dead_letters_waiting', labels)] == 1
    assert found[('tom_stream_up', labels)] == 1
    assert found[('tom_stream_last_message_timestamp_seconds', labels)] == pytest.approx(time.time(), abs=60)


def test_the_shipped_declaration_checks(settings, tmp_path):
    """./streams.toml as shipped: no stream active, and each example checks once made active
    with its variables set."""
    shipped = (Path(settings.BASE_DIR) / 'streams.toml').read_text()
    assert [(stream.name, stream.active) for stream in load(tmp_path, shipped, {})] == [('gcn', False),
                                                                                      ('broker', False)]
    variables = {'GCN_CLIENT_ID': 'id', 'GCN_CLIENT_SECRET': 'secret', 'ALERTS_KAFKA_SERVERS': 'kafka:9092'}
    streams = load(tmp_path, shipped.replace('active = false', 'active = true'), variables)
    assert [stream.options.get('BOOTSTRAP_SERVERS') for stream in streams] == [None, 'kafka:9092']


def test_the_pages_show_the_declaration_the_cron_program_recorded(db, tmp_path):
    """Web pods have no copy of streams.toml: they read what the cron program recorded."""
    [stream] = load(tmp_path, GOOD)
    state.record_declared([stream])
    recorded = StreamState.objects.get(name='gcn')
    assert (recorded.declared, recorded.topics, recorded.longest_silence) == (True, ['gcn.notices'], 7200.0)
    assert [row.name for row in state.report().rows] == ['gcn']
    StreamState.objects.filter(name='gcn').update(messages=9)
    state.record_declared([])  # removed from the file: gone from the page, its counts kept
    assert state.report().rows == [] and StreamState.objects.get(name='gcn').messages == 9
    assert not state.pause('gcn', 'pi')


def test_pruning_drops_old_hours_and_retried_letters_and_keeps_the_counters(gcn):
    old = timezone.now() - timedelta(days=100)
    StreamHour.objects.create(stream='gcn', hour=old.replace(minute=0, second=0, microsecond=0), messages=5)
    StreamHour.objects.create(stream='gcn', hour=timezone.now().replace(minute=0, second=0, microsecond=0), messages=1)
    kept = {'stream': 'gcn', 'topic': 't', 'partition': 0, 'handler': 'h', 'error': 'e', 'failed_at': old}
    DeadLetter.objects.create(offset=1, resolved_at=old, **kept)
    DeadLetter.objects.create(offset=2, **kept)  # never stored: kept however old
    StreamState.objects.filter(name='gcn').update(messages=6)
    assert state.prune(90) == (1, 1)
    assert list(DeadLetter.objects.values_list('offset', flat=True)) == [2]
    assert StreamState.objects.get(name='gcn').messages == 6


def test_a_child_ending_again_and_again_waits_longer_each_time_and_at_once_after_a_steady_run():
    from myapp.supervision.backoff import Backoff

    backoff = Backoff(1, 8, steady_after=60)
    assert [backoff.after(2) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert backoff.after(61) == 1 and backoff.after(2) == 2
