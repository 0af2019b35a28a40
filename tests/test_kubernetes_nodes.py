"""The Helm chart on two real Kubernetes nodes (tests/k8s/node.py: kubelet, containerd, CNI on
this machine), running the image built from this checkout. Outside the cluster, on an address
the pods reach: PostgreSQL, the fake LCO and an S3 server (data products and backups).

One release for the module, a crontab of its own: save_data every minute, the backups. The
tests run in order."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import boto3
import psycopg
import pytest

from tests.conftest import REPO, run_job, start_s3_server
from tests.fake_lco import FakeLCO
from tests.k8s.cluster import Cluster
from tests.k8s.node import HOST_ADDRESS
from tests.postgres_server import PostgresServer
from tests.test_e2e_docker import engine_available

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker]

CHART = REPO / 'deploy' / 'mytom'
RELEASE = 'tom'
SAVE_DATA = f'{RELEASE}-mytom-save-data'
CRONTAB = ('* * * * * python manage.py jobs run --timeout 4m save_data\n'
           '47 2 * * * python manage.py jobs run --name backup --timeout 3h backup create --kind scheduled\n')
HOST = 'tom.example.org'
PASSPHRASE = 'kubernetes-tests-passphrase'


def build_parts(script):
    built = subprocess.run([str(REPO / 'tests' / 'k8s' / script)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f'tests/k8s/{script} failed:\n{built.stderr[-3000:]}')
    return built.stdout.strip()


@pytest.fixture(scope='module')
def image(tmp_path_factory):
    """The image of this checkout, saved as an archive for the nodes' containerd."""
    if not engine_available():
        if os.environ.get('E2E_REQUIRE_DOCKER'):
            pytest.fail('E2E_REQUIRE_DOCKER is set but no Docker engine answers `docker info`')
        pytest.skip('no Docker engine to build the image (set E2E_REQUIRE_DOCKER to make this a failure)')
    name = f'mytom-k8s-{os.getpid()}:tests'
    args = [f'--build-arg={arg}={os.environ[arg]}' for arg in ('PYTHON_IMAGE', 'SUPERCRONIC_URL', 'SUPERCRONIC_SHA256')
            if os.environ.get(arg)]
    archive = tmp_path_factory.mktemp('image') / 'image.tar'
    try:
        built = subprocess.run(['docker', 'build', '--network', 'host', '-t', name, *args, str(REPO)],
                               capture_output=True, text=True, timeout=1500)
        if built.returncode != 0:
            pytest.fail(f'docker build failed:\n{built.stderr[-3000:]}')
        subprocess.run(['docker', 'save', '-o', str(archive), name], check=True, capture_output=True, timeout=600)
        yield name, archive
    finally:
        subprocess.run(['docker', 'image', 'rm', '-f', name], capture_output=True)


class World:
    """The cluster and what stands outside it."""

    def __init__(self, cluster, postgres, lco, s3_url):
        self.cluster, self.postgres, self.lco, self.s3_url = cluster, postgres, lco, s3_url
        self.s3 = boto3.client('s3', endpoint_url=s3_url, region_name='us-east-1', aws_access_key_id='tests',
                               aws_secret_access_key='tests-secret')

    def sql(self, query, *params):
        with psycopg.connect(self.postgres.url('tom'), autocommit=True) as connection:
            return connection.execute(query, params).fetchall()

    def runs(self, name='save_data'):
        return self.sql('SELECT id, trigger, outcome, scheduled_for, host, summary FROM myapp_jobrun '
                        'WHERE name = %s ORDER BY id', name)

    def pods(self, component):
        return self.cluster.get('pods', '-l', f'app.kubernetes.io/instance={RELEASE},'
                                f'app.kubernetes.io/component={component}')['items']

    def manage_in(self, pod, code):
        """What the Python code prints, run by `manage.py shell` in a pod."""
        done = self.cluster.kubectl('exec', pod, '--', '/app/docker/entrypoint.sh', 'python', 'manage.py', 'shell',
                                    '-c', code, timeout=120)
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ''


@pytest.fixture(scope='module')
def world(tmp_path_factory, image):
    tools, parts = build_parts('build.sh'), build_parts('node-parts.sh')
    directory = tmp_path_factory.mktemp('nodes')
    cluster = Cluster(tools, directory / 'cluster', node_parts=parts, nodes=2)
    postgres = lco = stop_s3 = None
    try:
        started = time.monotonic()
        cluster.start()
        cluster.timings = {'cluster up': time.monotonic() - started}
        started = time.monotonic()
        failed = []

        def import_into(node):
            try:
                node.import_image(image[1])
            except subprocess.CalledProcessError as error:
                failed.append(f'{node.name}: {error.stderr.decode()[-2000:]}')

        importing = [threading.Thread(target=import_into, args=(node,)) for node in cluster.nodes]
        for thread in importing:
            thread.start()
        # Not under pytest's own folder, which only root may enter: the server runs as postgres.
        postgres = PostgresServer(tempfile.mkdtemp(prefix='mytom-postgres-'), also_listen=HOST_ADDRESS).start()
        postgres.sql('CREATE DATABASE tom')
        lco = FakeLCO(host=HOST_ADDRESS).start()
        s3_url, stop_s3 = start_s3_server(host=HOST_ADDRESS)
        world = World(cluster, postgres, lco, s3_url)
        for bucket in ('tom-data', 'tom-backups'):
            world.s3.create_bucket(Bucket=bucket)
        for thread in importing:
            thread.join()
        assert not failed, f'importing the image failed: {failed}'
        cluster.timings['image into both nodes'] = time.monotonic() - started
        world.image = image[0]
        yield world
    finally:
        if stop_s3:
            stop_s3()
        if lco:
            lco.stop()
        if postgres:
            postgres.stop()
            shutil.rmtree(postgres.directory, ignore_errors=True)
        cluster.stop()


def chart_with_crontab(tmp_path_factory):
    chart = tmp_path_factory.mktemp('chart') / 'mytom'
    shutil.copytree(CHART, chart)
    crontab = chart.parent / 'crontab'
    crontab.write_text(CRONTAB)
    env = {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': 'tests-only',
           'DATA_DIR': str(chart.parent / 'data')}
    exported = run_job(env, 'jobs', 'export', '--kubernetes', '--crontab', str(crontab))
    assert exported.returncode == 0, exported.stderr
    (chart / 'crontab-jobs.yaml').write_text(exported.stdout)
    return chart


def values(world):
    repository, tag = world.image.split(':')
    settings = {
        'image.repository': repository, 'image.tag': tag, 'image.pullPolicy': 'Never',
        'overdueCheck.enabled': 'false',
        'secrets.SECRET_KEY': 'kubernetes-tests-secret-key',
        'secrets.DATABASE_URL': world.postgres.url('tom', host=HOST_ADDRESS),
        'secrets.LCO_API_KEY': 'test-key', 'secrets.AWS_ACCESS_KEY_ID': 'tests',
        'secrets.AWS_SECRET_ACCESS_KEY': 'tests-secret', 'secrets.BACKUP_PASSPHRASE': PASSPHRASE,
        'config.ALLOWED_HOSTS': HOST, 'config.LCO_PORTAL_URL': world.lco.url, 'config.LCO_ARCHIVE_URL': world.lco.url,
        'config.TOM_HTTP_TIMEOUT': '10', 'config.AWS_STORAGE_BUCKET_NAME': 'tom-data',
        'config.AWS_S3_ENDPOINT_URL': world.s3_url, 'config.AWS_S3_REGION_NAME': 'us-east-1',
        'config.BACKUP_REPOSITORY': f's3:{world.s3_url}/tom-backups',
    }
    return [arg for name, value in settings.items() for arg in ('--set-string', f'{name}={value}')]


@pytest.fixture(scope='module')
def release(world, tmp_path_factory):
    started = time.monotonic()
    world.cluster.helm('install', RELEASE, str(chart_with_crontab(tmp_path_factory)), *values(world), '--wait',
                       '--timeout', '6m', timeout=420)
    world.cluster.timings['helm install --wait'] = time.monotonic() - started
    return world


def wait_for(what, check, seconds, every=2.0):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {seconds} s waiting for {what}')
        time.sleep(every)
    return found


def answer(url, host=HOST):
    """(status, body) of a GET through the Service, retried while the connection fails."""
    request = urllib.request.Request(url, headers={'Host': host})
    for _ in range(30):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            time.sleep(1)
    raise AssertionError(f'{url} never answered')


def add_observation(world, observation_id, frames=1):
    """An LCO observation that has finished, and the TOM's record of it (made in a web pod)."""
    made = world.lco.add_request(observation_id, frames=frames)
    pod = world.pods('web')[0]['metadata']['name']
    world.manage_in(pod, (
        'from tom_targets.models import Target; from tom_observations.models import ObservationRecord;'
        'target, _ = Target.objects.get_or_create(name="SN 2026k8s", defaults=dict(type="SIDEREAL", ra=1, dec=2));'
        f'ObservationRecord.objects.create(target=target, facility="LCORedirect", observation_id="{observation_id}",'
        ' status="COMPLETED", parameters={}); print("ok")'))
    return made


def stored(world, frame):
    return world.sql('SELECT count(*) FROM tom_dataproducts_dataproduct WHERE data LIKE %s',
                     f'%{frame.filename}')[0][0]


def job_pods(world):
    return [pod for pod in world.pods('job')
            if pod['metadata']['labels'].get('batch.kubernetes.io/job-name', '').startswith(SAVE_DATA)]


# --- the tests, in order ---------------------------------------------------------------------

def test_install_migrates_and_web_pods_on_both_nodes_answer_through_the_service(release):
    world = release
    migrate = world.cluster.get('job', f'{RELEASE}-mytom-migrate')
    assert migrate['status'].get('succeeded') == 1
    assert world.sql("SELECT count(*) FROM django_migrations WHERE app = 'myapp'")[0][0] > 0

    web = world.pods('web')
    assert len(web) == 2 and all(pod['status']['phase'] == 'Running' for pod in web)
    assert {pod['spec']['nodeName'] for pod in web} == {'node-a', 'node-b'}  # spread by default
    service = world.cluster.get('service', f'{RELEASE}-mytom-web')['spec']['clusterIP']
    status, body = answer(f'http://{service}:8000/accounts/login/')
    assert status == 200 and 'name="password"' in body
    status, _ = answer(f'http://{service}:8000/accounts/login/', host='evil.example.net')
    assert status == 400

    # The pod security context holds on a real node: uid 1000, nothing of the image writable.
    pod = web[0]['metadata']['name']
    assert world.cluster.kubectl('exec', pod, '--', 'id', '-u').stdout.strip() == '1000'
    touched = world.cluster.kubectl('exec', pod, '--', 'touch', '/app/mytom/x', check=False)
    assert touched.returncode != 0 and 'Read-only file system' in touched.stderr


def test_a_save_data_cronjob_downloads_into_the_bucket_and_a_web_pod_on_the_other_node_serves_it(release):
    world = release
    frame, = add_observation(world, 7001)

    wait_for('a scheduled save_data run that stored the frame', lambda: stored(world, frame) == 1, 150)
    runs = world.runs()
    assert any(run[1] == 'schedule' and run[2] == 'succeeded' for run in runs), runs
    assert world.lco.count('download', frame.id) == 1
    keys = [item['Key'] for item in world.s3.list_objects_v2(Bucket='tom-data').get('Contents', [])]
    assert any(key.endswith(frame.filename) for key in keys), keys

    # The run's pod ran on one node; a web pod on the other reads the file from the bucket.
    done = wait_for('the run\'s pod to succeed', lambda: [
        pod for pod in job_pods(world) if pod['status']['phase'] == 'Succeeded'], 60)
    job_node = done[0]['spec']['nodeName']
    other = next(pod for pod in world.pods('web') if pod['spec']['nodeName'] != job_node)
    digest = world.manage_in(other['metadata']['name'], (
        'import hashlib; from tom_dataproducts.models import DataProduct;'
        f'p = DataProduct.objects.get(data__endswith="{frame.filename}");'
        'print(hashlib.sha256(p.data.open("rb").read()).hexdigest())'))
    assert digest == hashlib.sha256(frame.content()).hexdigest()

    # The job's own lines reach `kubectl logs`.
    logs = world.cluster.kubectl('logs', done[0]['metadata']['name']).stdout
    assert 'jobs: save_data run' in logs and 'succeeded' in logs

    # One run per tick, whichever node: no scheduled minute ran twice.
    ticks = [run[3] for run in world.runs() if run[1] == 'schedule' and run[2] != 'skipped']
    assert len(ticks) == len(set(ticks)), ticks
    print(json.dumps({name: round(seconds) for name, seconds in world.cluster.timings.items()}))
