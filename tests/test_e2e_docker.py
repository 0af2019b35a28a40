"""End to end on a real Docker engine: `docker compose up --wait` on a copy of this checkout
with a `.env`, as a new user would, plus a fake LCO archive and a fake ATLAS server on the
stack's network (tests/compose.e2e.yaml).

The tests run in file order and share one stack. Without an engine they are skipped, unless
E2E_REQUIRE_DOCKER is set (as .ci/run does), when they fail instead. Base images and the
supercronic download come from the environment where no registry is reachable:
PYTHON_IMAGE, POSTGRES_IMAGE, SUPERCRONIC_URL, SUPERCRONIC_SHA256.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import time

import pytest
import requests

from tests import conftest
from tests.browser import ARTIFACTS, browser_page, log_in
from tests.conftest import REPO, compose_binary, copy_checkout, free_port, save_as_editors_do
from tests.fake_lco import Frame

pytestmark = pytest.mark.docker

ADMIN = 'e2e-admin'
OBSERVATION = 5001  # served by the lco service with two frames, ids 1001 and 1002
FRAMES = [Frame(id=1001 + i, filename='', size=2048) for i in range(2)]
# A grace that rides out a busy CI machine (runs start late under load), short enough to see go overdue.
SAVE_DATA = 'python manage.py jobs run --grace 20s save_data'
HOURLY_SAVE_DATA = '5 * * * * python manage.py jobs run --timeout 50m save_data\n'
# The crontab with save_data every 3 seconds instead of hourly.
FAST_CRONTAB = (REPO / 'crontab').read_text().replace(HOURLY_SAVE_DATA, f'*/3 * * * * * * {SAVE_DATA}\n')
# A job whose work is visible: each run appends a line to a file on the shared volume.
TICK = ('*/10 * * * * * * python manage.py jobs run --name tick shell -c '
        '"open(\'/data/ticks.txt\', \'a\').write(\'tick\\n\')"\n')
BAD_LINE = 'this is not a cron line\n'
METRICS_TOKEN = 'e2e-metrics-token'
BACKUP_PASSPHRASE = 'e2e backup passphrase, kept off the machine'


def engine_available():
    return shutil.which('docker') and subprocess.run(['docker', 'info'], capture_output=True).returncode == 0


def require_engine(why):
    """Skips the caller without a Docker engine (saying why it needs one), or fails it when
    E2E_REQUIRE_DOCKER is set, as CI sets it."""
    if not engine_available():
        if os.environ.get('E2E_REQUIRE_DOCKER'):
            pytest.fail('E2E_REQUIRE_DOCKER is set but no Docker engine answers `docker info`')
        pytest.skip(f'no Docker engine {why} (set E2E_REQUIRE_DOCKER to make this a failure)')


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

    def health(self, service):
        """{container name: health} of the service's containers, as `docker compose ps` shows."""
        out = self.compose('ps', '--format', 'json', service).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        rows = [row for rows_ in rows for row in (rows_ if isinstance(rows_, list) else [rows_])]
        return {row['Name']: row.get('Health', '') for row in rows}

    def login(self):
        """A requests session logged in as the stack's first admin (a staff user)."""
        session = requests.Session()
        session.get(self.url + '/accounts/login/', timeout=10)
        session.post(self.url + '/accounts/login/', timeout=10, headers={'Referer': self.url + '/'}, data={
            'login': ADMIN, 'password': self.env['DJANGO_SUPERUSER_PASSWORD'],
            'csrfmiddlewaretoken': session.cookies['csrftoken'],
        })
        return session

    def query(self, code):
        """What the Python code prints, run by manage.py shell in the web container."""
        return self.manage('shell', '-c', code).stdout.strip().splitlines()[-1]


def wait_for(what, check, seconds=120, every=1.0):
    """tests.conftest.wait_for at the pace of these tests: each check asks the engine."""
    return conftest.wait_for(what, check, seconds, every)


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    require_engine('for the stack')
    directory = tmp_path_factory.mktemp('checkout')
    directory.chmod(0o755)  # as a clone's is: the cron container's user must read ./crontab
    copy_checkout(directory)
    project = f'mytom-e2e-{os.getpid()}'
    password = secrets.token_urlsafe(16)
    # What a user puts in .env: it reaches every container.
    (directory / '.env').write_text(
        f'DJANGO_SUPERUSER_USERNAME={ADMIN}\nDJANGO_SUPERUSER_PASSWORD={password}\n'
        'LCO_PORTAL_URL=http://lco:8080\nLCO_ARCHIVE_URL=http://lco:8080\nLCO_API_KEY=e2e-key\n'
        f'TOM_HTTP_TIMEOUT=10\nCRON_HEALTH_INTERVAL=5s\nMETRICS_TOKEN={METRICS_TOKEN}\n'
        'ATLAS_URL=http://atlas:8081\nATLAS_API_KEY=e2e-atlas-key\n'
        f'BACKUP_PASSPHRASE={BACKUP_PASSPHRASE}\n')
    env = {
        **os.environ,
        'COMPOSE_PROJECT_NAME': project,
        'TOM_IMAGE': f'{project}:latest',
        'WEB_PORT': str(free_port()),
        'DJANGO_SUPERUSER_PASSWORD': password,
    }
    stack = Stack(directory, env)
    try:
        stack.compose('build', timeout=900)
        started = time.monotonic()
        up = stack.compose('up', '--wait', '--wait-timeout', '300', check=False, timeout=600)
        stack.up_wait = (up.returncode, time.monotonic() - started, up.stdout + up.stderr)
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


def test_compose_up_wait_returns_once_every_container_is_healthy(stack):
    returncode, seconds, output = stack.up_wait

    assert returncode == 0, output
    assert set(stack.health('cron').values()) == {'healthy'}
    assert set(stack.health('web').values()) == {'healthy'}


def test_web_answers_its_health_url_and_login_page(stack):
    health = requests.get(stack.url + '/health/', timeout=10)
    login = requests.get(stack.url + '/accounts/login/', timeout=10)

    assert health.json() == {'status': 'ok'}
    assert login.status_code == 200 and 'name="password"' in login.text


def test_containers_run_as_a_non_root_user(stack):
    for service in ('web', 'cron'):
        uid = stack.compose('exec', '-T', service, 'id', '-u').stdout.strip()
        assert uid != '0', f'{service} runs as root'


def test_web_and_cron_are_hardened_and_web_holds_no_backup(stack):
    for service in ('web', 'cron', 'migrate'):
        container = json.loads(subprocess.run(
            ['docker', 'inspect', stack.compose('ps', '-a', '-q', service).stdout.split()[0]],
            capture_output=True, text=True, check=True).stdout)[0]['HostConfig']
        assert container['ReadonlyRootfs'] is True, service
        assert container['CapDrop'] == ['ALL'] and not container['CapAdd'], service
        assert 'no-new-privileges:true' in container['SecurityOpt'], service
    web = ['exec', '-T', 'web', 'sh', '-c']
    # The image's own files, the backup repository and the generated passphrase: out of reach.
    assert stack.compose(*web, 'touch /app/manage.py', check=False).returncode != 0
    assert stack.compose(*web, 'touch /backups/x', check=False).returncode != 0
    assert stack.compose(*web, 'ls /backups').stdout.strip() == ''  # the image's empty folder, no mount
    assert stack.compose(*web, 'test -e /run/tom-backup-secrets', check=False).returncode != 0
    assert 'BACKUP_PASSPHRASE=\n' in stack.compose(*web, 'env').stdout + '\n'  # given empty, though .env sets it
    modes = stack.compose('exec', '-T', 'cron', 'stat', '-c', '%n %a %u %g', '/run/tom-secrets',
                          '/run/tom-secrets/secret_key', '/run/tom-secrets/postgres_password').stdout.split('\n')
    assert modes[:3] == ['/run/tom-secrets 750 1000 999', '/run/tom-secrets/secret_key 600 1000 1000',
                         '/run/tom-secrets/postgres_password 640 1000 999'], modes


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

    assert HOURLY_SAVE_DATA in (REPO / 'crontab').read_text()
    stack.save_crontab(FAST_CRONTAB)

    stack.logs_once('cron', 'changed: new schedule loaded', 60)
    logs = stack.logs_once('cron', 'done: 1 record(s) checked, downloaded 2 product(s)', 120)
    done = [line for line in logs.splitlines() if 'done: 1 record(s) checked, downloaded 2 product(s)' in line]
    assert f'job.command="{SAVE_DATA}"' in done[0]
    assert stack.query('from myapp.models import JobRun; '
                       'print(JobRun.objects.filter(name="save_data", outcome="succeeded").exists())') == 'True'


def test_downloaded_product_is_served_to_a_logged_in_user_only(stack):
    session = stack.login()
    page = session.get(stack.url + '/dataproducts/data/', timeout=10).text
    links = sorted(set(re.findall(r'href="(/data/[^"]+)"', page)))
    assert len(links) == 2, page[-2000:]

    served = sorted(session.get(stack.url + link, timeout=10).content for link in links)
    assert served == sorted(frame.content() for frame in FRAMES)

    anonymous = requests.get(stack.url + links[0], timeout=10)
    assert anonymous.url.startswith(stack.url + '/accounts/login/')
    assert 'name="password"' in anonymous.text
    assert all(frame.content() not in anonymous.content for frame in FRAMES)


def test_an_anonymous_delete_of_a_data_product_over_http_leaves_its_file(stack):
    session = stack.login()
    pk, link = stack.query('from tom_dataproducts.models import DataProduct; '
                           'product = DataProduct.objects.exclude(data="").first(); '
                           'print(product.pk, product.data.url)').split()
    before = session.get(stack.url + link, timeout=10).content
    assert before
    stranger = requests.Session()
    stranger.get(stack.url + '/accounts/login/', timeout=10)
    page = stranger.get(stack.url + f'/dataproducts/data/{pk}/delete/', timeout=10, allow_redirects=False)
    delete = stranger.post(stack.url + f'/dataproducts/data/{pk}/delete/', timeout=10, allow_redirects=False,
                           data={'csrfmiddlewaretoken': stranger.cookies['csrftoken']},
                           headers={'Referer': stack.url + '/'})

    assert page.status_code == delete.status_code == 302
    assert delete.headers['Location'].startswith('/accounts/login/')
    assert stack.query('from tom_dataproducts.models import DataProduct; '
                       f'print(DataProduct.objects.filter(pk={pk}).count())') == '1'
    assert session.get(stack.url + link, timeout=10).content == before


def test_the_jobs_page_shows_the_runs_and_run_now_is_run_by_cron(stack):
    session = stack.login()
    wait_for('a few runs of save_data on its page', lambda: session.get(
        stack.url + '/jobs/save_data/', timeout=10).text.count('<tr class="run-succeeded">') >= 3, 90)
    jobs = session.get(stack.url + '/jobs/', timeout=10).text
    row = jobs.split('data-job="save_data"')[1].split('</tr>')[0]
    assert '<code>*/3 * * * * * *</code>' in row and 'Every 3 seconds' in row
    assert not row.rstrip().endswith('never</td>'), row  # it has a last success

    with browser_page(stack.url) as page:
        log_in(page, stack.url, ADMIN, stack.env['DJANGO_SUPERUSER_PASSWORD'])
        page.click('#nav-jobs')
        page.click('#jobs a:text-is("clearsessions")')
        page.wait_for_load_state('load')  # as a person does: plotly's script is large
        page.click('#run-now-button')
        try:
            page.wait_for_selector('.run-request[data-state="succeeded"]', timeout=90_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / 'e2e-run-now.png'), full_page=True)
        assert page.problems == []
    cron_hosts = stack.compose('ps', '-q', 'cron').stdout.split()
    host = stack.query('from myapp.models import JobRun; '
                       'print(JobRun.objects.get(name="clearsessions", trigger="run now").host)')
    assert any(container.startswith(host) for container in cron_hosts), (host, cron_hosts)


def atlas_query(stack, session, target_id, min_mjd):
    """Submits the ATLAS form of the target as its page does; returns the answer."""
    form = f'{stack.url}/dataproducts/data/single_target_data_service/Atlas/query/'
    assert session.get(f'{form}?target_id={target_id}', timeout=10).status_code == 200
    return session.post(form, timeout=30, allow_redirects=False, headers={'Referer': form}, data={
        'csrfmiddlewaretoken': session.cookies['csrftoken'], 'target_id': target_id, 'service': 'Atlas',
        'min_date_mjd': min_mjd, 'max_date_mjd': min_mjd + 10})


def task_state(stack, target_id):
    """(status, our outcome) of the latest task queued for the target."""
    return tuple(json.loads(stack.query(
        'import json; from django_tasks.backends.database.models import DBTaskResult as R; '
        f'r = R.objects.filter(args_kwargs__args__2={target_id}).latest("enqueued_at"); '
        'print(json.dumps([str(r.pk), r.status, getattr(getattr(r, "record", None), "outcome", "")]))')))


def new_target(stack, name):
    return int(stack.query('from tom_targets.models import Target; '
                           f'print(Target.objects.create(name="{name}", type="SIDEREAL", ra=10, dec=-20).pk)'))


def test_the_atlas_query_is_queued_by_the_web_and_its_photometry_landed_by_cron(stack):
    target = new_target(stack, 'e2e atlas')
    session = stack.login()

    answer = atlas_query(stack, session, target, 60000)

    assert answer.status_code == 302 and answer.headers['Location'] == f'/targets/{target}/?tab=photometry'
    print(f'the ATLAS form answered in {answer.elapsed.total_seconds() * 1000:.0f} ms')
    assert answer.elapsed.total_seconds() < 1  # queued: ATLAS takes seconds even here
    wait_for('the photometry on the target', lambda: stack.query(
        'from tom_dataproducts.models import PhotometryReducedDatum as P; '
        f'print(P.objects.filter(target_id={target}, telescope="ATLAS").count())') == '3', 120, every=2)
    task_id, status, outcome = task_state(stack, target)
    assert (status, outcome) == ('SUCCEEDED', 'succeeded')
    logs = stack.logs('cron')
    assert f'tasks: atlas_query task {task_id} started on host ' in logs
    assert f'tasks: atlas_query task {task_id} succeeded in ' in logs
    page = session.get(stack.url + '/jobs/', timeout=10).text
    assert f'id="task-{task_id}"' in page.split('id="tasks-recent"')[1]


def test_a_task_running_when_the_cron_container_is_killed_is_recorded_lost_once_it_is_back(stack):
    target = new_target(stack, 'e2e atlas held')
    atlas_query(stack, stack.login(), target, 40000)  # ATLAS holds this one: it runs until killed
    wait_for('the task to run', lambda: task_state(stack, target)[1] == 'RUNNING', 60, every=2)
    task_id = task_state(stack, target)[0]

    stack.compose('kill', 'cron')
    stack.compose('start', 'cron')

    wait_for('the task recorded lost', lambda: task_state(stack, target)[1:] == ('FAILED', 'lost'), 90, every=2)
    assert f'tasks: atlas_query task {task_id} worker lost: ' in stack.logs_once('cron', 'worker lost', 30)
    wait_for('cron to be healthy again', lambda: set(stack.health('cron').values()) == {'healthy'}, 120)


def test_an_unreachable_archive_makes_cron_unhealthy_until_save_data_succeeds(stack):
    # Healthy to begin with (the earlier tests load the machine: wait for a check after them).
    wait_for('cron to be healthy', lambda: set(stack.health('cron').values()) == {'healthy'}, 90)
    stack.compose('stop', 'lco')
    try:
        wait_for('a failed save_data run', lambda: stack.query(
            'from myapp.models import JobRun; '
            'print(JobRun.objects.filter(name="save_data", outcome="failed").exists())') == 'True', 60)
        wait_for('cron to turn unhealthy', lambda: set(stack.health('cron').values()) == {'unhealthy'}, 90)
        check = stack.compose('exec', '-T', 'cron', 'python', 'manage.py', 'jobs', 'check', check=False)
        assert check.returncode == 1
        assert check.stderr.startswith('OVERDUE save_data (*/3 * * * * * *): last success ')
        assert 'last run failed at ' in check.stderr
    finally:
        stack.compose('start', 'lco')

    wait_for('cron to be healthy again', lambda: set(stack.health('cron').values()) == {'healthy'}, 90)
    metrics = requests.get(stack.url + '/metrics', timeout=10, headers={'Authorization': f'Bearer {METRICS_TOKEN}'})
    assert metrics.status_code == 200
    assert 'tom_job_overdue{job="save_data"} 0.0' in metrics.text
    assert 'tom_job_runs_total{job="save_data",outcome="failed"}' in metrics.text


def test_two_cron_replicas_run_each_tick_once(stack):
    stack.save_crontab((REPO / 'crontab').read_text() + TICK)
    stack.compose('up', '-d', '--no-recreate', '--scale', 'cron=2', 'cron', timeout=300)
    assert len(stack.health('cron')) == 2
    try:
        wait_for('six ticks of work', lambda: int(stack.query(
            'from myapp.models import JobRun; '
            'print(JobRun.objects.filter(name="tick", outcome="succeeded").count())')) >= 6, 180, every=3)
    finally:
        stack.save_crontab((REPO / 'crontab').read_text())
        stack.compose('up', '-d', '--no-recreate', '--scale', 'cron=1', 'cron', timeout=300)
    wait_for('the restored crontab, and the last tick runs to end', lambda: stack.query(
        'from myapp.models import CrontabLoad, JobRun; '
        'print("--name tick" in CrontabLoad.objects.filter(accepted=True).latest().text '
        'or JobRun.objects.filter(name="tick", outcome="running").exists())') == 'False', 60)

    # A run started once its replica had reloaded the restored crontab knows no tick: leave out
    # every run from the first replica's reload on (each records the crontab as it reloads it).
    runs = json.loads(stack.query(
        'import json; from myapp.models import CrontabLoad, JobRun; '
        'loads = CrontabLoad.objects.filter(accepted=True); '
        'last_tick = loads.filter(text__contains="--name tick").latest().loaded_at; '
        'restored = loads.filter(loaded_at__gt=last_tick).earliest().loaded_at; '
        'print(json.dumps([[str(r.scheduled_for), r.outcome, r.host, r.started_at < restored] '
        'for r in JobRun.objects.filter(name="tick").order_by("started_at")]))'))
    worked = {}
    for tick, outcome, host, before_restore in runs:
        if before_restore:
            assert tick != 'None'
            if outcome != 'skipped':
                worked.setdefault(tick, []).append((outcome, host))
    assert len(worked) >= 6
    assert all(len(work) == 1 for work in worked.values()), worked
    assert len({host for tick, outcome, host, _ in runs}) == 2, 'both replicas took part'
    # Every run that did the work, and only those, wrote its line.
    ticks = int(stack.compose('exec', '-T', 'web', 'sh', '-c', 'wc -l < /data/ticks.txt').stdout)
    assert ticks == sum(1 for _, outcome, _, _ in runs if outcome == 'succeeded')


def test_bad_crontab_edit_is_rejected_while_jobs_keep_running(stack):
    loads = stack.logs('cron').count('new schedule loaded')
    stack.save_crontab(FAST_CRONTAB)
    wait_for('the crontab to load', lambda: stack.logs('cron').count('new schedule loaded') > loads, 60)
    before = stack.logs('cron').count('msg="job succeeded"')
    stack.save_crontab(FAST_CRONTAB + BAD_LINE)

    logs = stack.logs_once('cron', 'change rejected', 60)
    rejection = next(line for line in logs.splitlines() if 'change rejected' in line)
    assert "bad crontab line: 'this is not a cron line'" in rejection
    wait_for('save_data to go on succeeding',
             lambda: stack.logs('cron').count('msg="job succeeded"') >= before + 2, 60)
    assert stack.query('from myapp.models import CrontabLoad; '
                       'print(CrontabLoad.objects.filter(accepted=False).latest().bad_line)') == BAD_LINE.strip()


def test_malformed_crontab_stops_a_new_cron_container(stack):
    # The crontab still holds the bad line saved by the previous test.
    assert BAD_LINE in (stack.directory / 'crontab').read_text()

    result = stack.compose('run', '--rm', '--no-deps', '-T', 'cron', check=False, timeout=180)

    assert result.returncode != 0
    assert "is not a valid crontab: bad crontab line: 'this is not a cron line'" in result.stdout + result.stderr


def test_an_upgrade_takes_a_snapshot_before_it_migrates(stack):
    # The database as the previous version left it: one migration of ours not yet applied.
    stack.save_crontab((REPO / 'crontab').read_text())  # the previous test left a bad line
    stack.manage('migrate', 'myapp', '0009', '--no-input')
    # As after a `git pull`: the one-shot migrate service runs again before web and cron.
    stack.compose('up', '-d', '--no-build', '--wait', '--wait-timeout', '300', timeout=600)
    wait_for('the web container to serve again', lambda: _status(stack.url + '/health/') == 200, 300)

    logs = stack.logs('migrate')
    assert '1 migration(s) to apply (myapp.0010_alert_streams): taking a snapshot first' in logs
    assert '(pre-upgrade) taken' in logs
    assert 'pre-upgrade' in stack.compose('exec', '-T', 'cron', 'python3', 'manage.py', 'backup', 'list').stdout


def test_a_stack_whose_volumes_were_deleted_is_restored_with_one_command(stack):
    stack.save_crontab((REPO / 'crontab').read_text())
    session = stack.login()
    products = sorted(set(re.findall(r'href="(/data/[^"]+)"', session.get(stack.url + '/dataproducts/data/',
                                                                           timeout=10).text)))
    before = {link: session.get(stack.url + link, timeout=10).content for link in products}
    targets = stack.query('from tom_targets.models import Target; print(sorted(Target.objects.values_list("name", '
                          'flat=True)))')
    made = stack.compose('exec', '-T', 'cron', 'python3', 'manage.py', 'backup', 'create')
    assert 'backup: snapshot' in made.stdout, made.stdout + made.stderr
    assert (stack.directory / 'backups' / 'config').exists()  # beside the checkout, not in a volume

    # The operator's procedure (README, "Restore"), word for word.
    stack.compose('down', '-v', '--timeout', '30')
    stack.compose('up', '-d', '--wait', '--wait-timeout', '300', timeout=600)
    restored = stack.compose('exec', '-T', 'cron', 'python', 'manage.py', 'backup', 'restore', 'latest')
    stack.compose('restart', 'web', 'cron')
    wait_for('the web container to serve again', lambda: _status(stack.url + '/health/') == 200, 300)

    assert 'backup: restored snapshot' in restored.stdout, restored.stdout + restored.stderr
    assert stack.query('from tom_targets.models import Target; print(sorted(Target.objects.values_list("name", '
                       'flat=True)))') == targets
    # The session made before the backup still signs its user in: the key came back with the data.
    jobs = session.get(stack.url + '/jobs/', timeout=10)
    assert jobs.url == stack.url + '/jobs/' and 'id="jobs"' in jobs.text
    assert {link: session.get(stack.url + link, timeout=10).content for link in products} == before
    assert len(before) == 3  # the two LCO frames and the ATLAS photometry


def test_health_says_the_database_is_down_and_nothing_more(stack):
    stack.compose('stop', 'db')
    try:
        wait_for('web to see the database gone', lambda: _status(stack.url + '/health/') == 503, 60)
        assert requests.get(stack.url + '/health/', timeout=10).json() == {'status': 'error'}
    finally:
        stack.compose('start', 'db')
    wait_for('web to see the database again', lambda: _status(stack.url + '/health/') == 200, 120)
    assert 'health: the database cannot be reached: ' in stack.logs('web')


def test_alert_streams_in_two_cron_containers_lose_no_alert(stack, tmp_path):
    """A real Kafka broker on this machine, reached by the cron containers through the stack
    network's gateway; alerts produced while a stream's process is killed, the broker restarts
    and the cron container is scaled up and down: each stored once, or a dead letter once."""
    from tests.kafka_broker import KafkaBroker, declaration

    network = f'{stack.env["COMPOSE_PROJECT_NAME"]}_default'
    gateway = subprocess.run(['docker', 'network', 'inspect', network, '-f', '{{(index .IPAM.Config 0).Gateway}}'],
                             capture_output=True, text=True, check=True).stdout.strip()
    broker = KafkaBroker(tmp_path, listen='0.0.0.0', advertise=gateway).start()
    declared = (stack.directory / 'streams.toml').read_text()
    try:
        broker.create_topic('e2e.alerts')
        save_as_editors_do(stack.directory / 'streams.toml', declared + declaration(
            broker.bootstrap, 'e2e.alerts', 'tests.stream_handlers.store_or_fail', name='e2e'))
        stack.logs_once('cron', 'stream e2e: reading', 90)
        stack.compose('up', '-d', '--no-recreate', '--scale', 'cron=2', 'cron', timeout=300)
        produced = [f'alert {n}' for n in range(2000)]
        for n in range(0, 2000, 400):
            produced[n] = f'bad {n}'
        broker.produce('e2e.alerts', produced[:500])
        # A stream's process killed (as the kernel's OOM killer would), in the first container.
        stack.compose('exec', '-T', '--index', '1', 'cron', 'python3', '-c',
                      'import os; [os.kill(int(p), 9) for p in os.listdir("/proc") if p.isdigit() and '
                      'b"streams\\x00listen\\x00e2e" in open(f"/proc/{p}/cmdline", "rb").read()]')
        broker.produce('e2e.alerts', produced[500:1000])
        broker.restart()
        broker.produce('e2e.alerts', produced[1000:1500])
        stack.compose('up', '-d', '--no-recreate', '--scale', 'cron=1', 'cron', timeout=300)
        broker.produce('e2e.alerts', produced[1500:])
        count = ('from myapp.models import StreamAlert, DeadLetter; print(StreamAlert.objects.filter(stream="e2e")'
                 '.count() + DeadLetter.objects.filter(stream="e2e").count())')
        wait_for('2000 alerts handled', lambda: int(stack.query(count)) >= 2000, 240, every=3)
        time.sleep(5)  # nothing handled twice arrives late
        found = json.loads(stack.query(
            'import json; from myapp.models import StreamAlert, DeadLetter; '
            'values = lambda model: [bytes(v).decode() for v in model.objects.filter(stream="e2e")'
            '.values_list("value", flat=True)]; print(json.dumps([values(StreamAlert), values(DeadLetter)]))'))
        stored, dead = found
        assert sorted(stored) == sorted(value for value in produced if not value.startswith('bad'))
        assert sorted(dead) == sorted(value for value in produced if value.startswith('bad'))
        logs = stack.logs('cron')
        assert 'cron: stream e2e ended (killed by SIGKILL' in logs
        answer = stack.login().get(stack.url + '/api/jobs/', timeout=10).json()['streams']
        e2e = next(item for item in answer if item['name'] == 'e2e')
        assert e2e['status'] == 'ok' and e2e['restarts'] >= 1 and e2e['dead_letters'] == 5
    finally:
        save_as_editors_do(stack.directory / 'streams.toml', declared)
        stack.compose('up', '-d', '--no-recreate', '--scale', 'cron=1', 'cron', timeout=300, check=False)
        broker.stop()


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
