"""End to end on a real Docker engine: `docker compose up` on a copy of this checkout, as a
new user would, plus a fake LCO archive on the stack's network (tests/compose.e2e.yaml).

The tests run in file order and share one stack. Without an engine they are skipped, unless
E2E_REQUIRE_DOCKER is set (as .ci/run does), when they fail instead. Base images and the
supercronic download come from the environment where no registry is reachable:
PYTHON_IMAGE, POSTGRES_IMAGE, SUPERCRONIC_URL, SUPERCRONIC_SHA256.
"""
import os
import re
import secrets
import shutil
import socket
import subprocess
import time

import pytest
import requests

from tests.conftest import REPO, compose_binary, save_as_editors_do
from tests.fake_lco import Frame

pytestmark = pytest.mark.docker

ADMIN = 'e2e-admin'
OBSERVATION = 5001  # served by the lco service with two frames, ids 1001 and 1002
FRAMES = [Frame(id=1001 + i, filename='', size=2048) for i in range(2)]
EVERY_3_SECONDS = '*/3 * * * * * * /app/.venv/bin/python /app/manage.py save_data\n'
BAD_LINE = 'this is not a cron line\n'


def engine_available():
    return shutil.which('docker') and subprocess.run(['docker', 'info'], capture_output=True).returncode == 0


class Stack:
    def __init__(self, directory, env):
        self.directory = directory
        self.env = env
        self.url = f'http://127.0.0.1:{env["WEB_PORT"]}'
        self.base = [compose_binary(), '-p', env['COMPOSE_PROJECT_NAME'],
                     '-f', 'compose.yaml', '-f', 'tests/compose.e2e.yaml']

    def compose(self, *args, check=True, timeout=600):
        result = subprocess.run([*self.base, *args], cwd=self.directory, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f'compose {" ".join(args)} failed ({result.returncode}):\n'
                                 f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
        return result

    def logs(self, service):
        return self.compose('logs', '--no-color', service).stdout

    def logs_once(self, service, text, seconds):
        """The service's logs, as soon as they contain text."""
        def found():
            logs = self.logs(service)
            return logs if text in logs else None
        return wait_for(f'{text!r} in the {service} logs', found, seconds)

    def manage(self, *args):
        return self.compose('exec', '-T', 'web', 'python3', '/app/manage.py', *args)

    def save_crontab(self, text):
        save_as_editors_do(self.directory / 'crontab', text)


def wait_for(what, check, seconds=120, every=1.0):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {seconds} s waiting for {what}')
        time.sleep(every)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    if not engine_available():
        if os.environ.get('E2E_REQUIRE_DOCKER'):
            pytest.fail('E2E_REQUIRE_DOCKER is set but no Docker engine answers `docker info`')
        pytest.skip('no Docker engine (set E2E_REQUIRE_DOCKER to make this a failure)')
    directory = tmp_path_factory.mktemp('checkout')
    directory.chmod(0o755)  # as a clone's is: the cron container's user must read ./crontab
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split('\0')
    for name in filter(None, files):
        if (REPO / name).is_file():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, directory / name)
    project = f'mytom-e2e-{os.getpid()}'
    env = {
        **os.environ,
        'COMPOSE_PROJECT_NAME': project,
        'TOM_IMAGE': f'{project}:latest',
        'WEB_PORT': str(free_port()),
        'DJANGO_SUPERUSER_USERNAME': ADMIN,
        'DJANGO_SUPERUSER_PASSWORD': secrets.token_urlsafe(16),
        'LCO_PORTAL_URL': 'http://lco:8080',
        'LCO_ARCHIVE_URL': 'http://lco:8080',
        'LCO_API_KEY': 'e2e-key',
        'TOM_HTTP_TIMEOUT': '10',
    }
    stack = Stack(directory, env)
    try:
        stack.compose('build', timeout=900)
        stack.compose('up', '-d', timeout=600)
        try:
            wait_for('the web container to answer /health/', lambda: _status(stack.url + '/health/') == 200, 300)
            wait_for('the cron container to start supercronic', lambda: 'read crontab' in stack.logs('cron'), 120)
        except AssertionError as error:
            state = (stack.compose('ps', '-a', check=False).stdout
                     + stack.compose('logs', '--tail', '30', check=False).stdout)
            raise AssertionError(f'{error}\n{state}')
        yield stack
    finally:
        stack.compose('down', '-v', '--timeout', '30', check=False)
        subprocess.run(['docker', 'image', 'rm', '-f', env['TOM_IMAGE']], capture_output=True)


def _status(url):
    try:
        return requests.get(url, timeout=5, allow_redirects=False).status_code
    except requests.RequestException:
        return None


def test_web_answers_its_health_url_and_login_page(stack):
    health = requests.get(stack.url + '/health/', timeout=10)
    login = requests.get(stack.url + '/accounts/login/', timeout=10)

    assert health.json() == {'status': 'ok'}
    assert login.status_code == 200 and 'name="password"' in login.text


def test_containers_run_as_a_non_root_user(stack):
    for service in ('web', 'cron'):
        uid = stack.compose('exec', '-T', service, 'id', '-u').stdout.strip()
        assert uid != '0', f'{service} runs as root'


def test_deploy_check_reports_no_error_in_the_web_container(stack):
    result = stack.compose('exec', '-T', 'web', 'python3', '/app/manage.py', 'check', '--deploy', check=False)

    assert result.returncode == 0, result.stderr
    assert 'ERRORS' not in result.stdout + result.stderr


def test_crontab_edit_takes_effect_live_and_cron_downloads(stack):
    stack.manage('shell', '-c', (
        'from tom_targets.models import Target; from tom_observations.models import ObservationRecord; '
        't = Target.objects.create(name="e2e target", type="SIDEREAL", ra=1, dec=2); '
        f'ObservationRecord.objects.create(target=t, facility="LCORedirect", observation_id="{OBSERVATION}", '
        'status="COMPLETED", parameters={})'))

    stack.save_crontab((stack.directory / 'crontab').read_text() + EVERY_3_SECONDS)

    logs = stack.logs_once('cron', 'msg="job succeeded"', 120)
    assert 'changed: new schedule loaded' in logs
    done = [line for line in logs.splitlines() if 'done: 1 record(s) checked, downloaded 2 product(s)' in line]
    assert done and 'job.command="/app/.venv/bin/python /app/manage.py save_data"' in done[0]


def test_downloaded_product_is_served_to_a_logged_in_user_only(stack):
    session = requests.Session()
    session.get(stack.url + '/accounts/login/', timeout=10)
    session.post(stack.url + '/accounts/login/', timeout=10, headers={'Referer': stack.url + '/'}, data={
        'login': ADMIN, 'password': stack.env['DJANGO_SUPERUSER_PASSWORD'],
        'csrfmiddlewaretoken': session.cookies['csrftoken'],
    })
    page = session.get(stack.url + '/dataproducts/data/', timeout=10).text
    links = sorted(set(re.findall(r'href="(/data/[^"]+)"', page)))
    assert len(links) == 2, page[-2000:]

    served = sorted(session.get(stack.url + link, timeout=10).content for link in links)
    assert served == sorted(frame.content() for frame in FRAMES)

    anonymous = requests.get(stack.url + links[0], timeout=10)
    assert anonymous.url.startswith(stack.url + '/accounts/login/')
    assert 'name="password"' in anonymous.text
    assert all(frame.content() not in anonymous.content for frame in FRAMES)


def test_bad_crontab_edit_is_rejected_while_jobs_keep_running(stack):
    good = (stack.directory / 'crontab').read_text()
    stack.save_crontab(good + BAD_LINE)

    logs = stack.logs_once('cron', 'change rejected', 60)
    rejection = next(line for line in logs.splitlines() if 'change rejected' in line)
    assert "bad crontab line: 'this is not a cron line'" in rejection
    before = logs.count('msg="job succeeded"')
    wait_for('save_data to go on succeeding',
             lambda: stack.logs('cron').count('msg="job succeeded"') >= before + 2, 60)


def test_malformed_crontab_stops_a_new_cron_container(stack):
    # The crontab still holds the bad line saved by the previous test.
    assert BAD_LINE in (stack.directory / 'crontab').read_text()

    result = stack.compose('run', '--rm', '--no-deps', '-T', 'cron', check=False, timeout=180)

    assert result.returncode != 0
    assert "is not a valid crontab: bad crontab line: 'this is not a cron line'" in result.stdout + result.stderr


def test_compose_down_stops_everything_within_the_grace_period(stack):
    stack.save_crontab((REPO / 'crontab').read_text())
    started = time.monotonic()
    stopped = stack.compose('stop', timeout=900)
    seconds = time.monotonic() - started

    states = stack.compose('ps', '-a', '--format', '{{.Service}} {{.State}} {{.ExitCode}}').stdout.split('\n')
    exits = dict((line.split()[0], line.split()[2]) for line in states if line.strip())
    assert {exits[s] for s in ('web', 'cron', 'db')} == {'0'}, (exits, stopped.stderr)
    assert seconds < 60, f'stopping took {seconds:.0f} s'
    assert stack.compose('down').returncode == 0
