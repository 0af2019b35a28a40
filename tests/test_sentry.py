"""Runs reported to Sentry by the real sentry-sdk transport, to an ingest on 127.0.0.1."""
import pytest

from myapp.jobs import schedule
from tests.conftest import run_job
from tests.fake_sentry import FakeSentry

FAILING = ('5 * * * * python manage.py jobs run --timeout 10m --alert-after 3 --name downloads save_data '
           '--target_id 999999\n')


@pytest.fixture
def sentry():
    server = FakeSentry().start()
    yield server
    server.stop()


def test_a_failed_run_is_an_event_and_both_ends_of_it_check_in(tom_env, sentry):
    schedule.record_load(FAILING)

    job = run_job({**tom_env, 'SENTRY_DSN': sentry.dsn},
                  'jobs', 'run', '--timeout', '10m', '--alert-after', '3', '--name', 'downloads', 'save_data',
                  '--target_id', '999999')

    assert job.returncode == 1
    started, ended = sentry.of_type('check_in')
    assert (started['monitor_slug'], started['status'], ended['status']) == ('downloads', 'in_progress', 'error')
    assert started['monitor_config'] == {'schedule': {'type': 'crontab', 'value': '5 * * * *'}, 'timezone': 'UTC',
                                         'checkin_margin': 11, 'max_runtime': 10,
                                         'failure_issue_threshold': 3, 'recovery_threshold': 1}
    assert ended['check_in_id'] == started['check_in_id'] and ended['duration'] > 0
    [event] = sentry.of_type('event')
    assert event['message'] == "job downloads failed: CommandError: no target with id '999999'"
    assert event['level'] == 'error' and event['tags']['job'] == 'downloads'
    assert "no target with id '999999'" in event['contexts']['job run']['output tail']


def test_a_successful_run_checks_in_ok_and_sends_no_event(tom_env, sentry):
    schedule.record_load('*/10 * * * * * * python manage.py jobs run --name sessions clearsessions\n')

    job = run_job({**tom_env, 'SENTRY_DSN': sentry.dsn}, 'jobs', 'run', '--name', 'sessions', 'clearsessions')

    assert job.returncode == 0, job.stderr
    started, ended = sentry.of_type('check_in')
    assert (started['status'], ended['status']) == ('in_progress', 'ok')
    assert 'monitor_config' not in started  # every 10 seconds: Sentry's crontab monitors cannot say it
    assert sentry.of_type('event') == []
