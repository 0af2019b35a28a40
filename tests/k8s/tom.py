"""A TOM on real Kubernetes nodes, for the tests and the benchmark: the image of this checkout
built and imported into every node, the control plane and nodes (tests/k8s/cluster.py), and
outside the cluster, on an address the pods reach, PostgreSQL, the fake LCO, the fake ATLAS
and an S3 server (data products and backups); then the chart installed with a crontab of the
caller's, and an administrator made by its migration hook."""
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import boto3
import psycopg

from tests.conftest import REPO, run_job, start_s3_server
from tests.fake_atlas import FakeAtlas
from tests.fake_lco import FakeLCO
from tests.k8s.cluster import Cluster
from tests.k8s.node import HOST_ADDRESS
from tests.postgres_server import PostgresServer

CHART = REPO / 'deploy' / 'mytom'
RELEASE = 'tom'
HOST = 'tom.example.org'
PASSPHRASE = 'kubernetes-tests-passphrase'
ADMIN, ADMIN_PASSWORD = 'admin', 'kubernetes-tests-admin-password'


class SetUpFailed(Exception):
    pass


def tool(script):
    """The folder tests/k8s/build.sh or node-parts.sh prints (building it the first time)."""
    built = subprocess.run([str(REPO / 'tests' / 'k8s' / script)], capture_output=True, text=True)
    if built.returncode != 0:
        raise SetUpFailed(f'tests/k8s/{script} failed:\n{built.stderr[-3000:]}')
    return built.stdout.strip()


@contextlib.contextmanager
def image(directory):
    """(name, archive) of the image of this checkout, built with the same build arguments
    compose passes (PYTHON_IMAGE, SUPERCRONIC_URL, SUPERCRONIC_SHA256 when set)."""
    args = [f'--build-arg={arg}={os.environ[arg]}' for arg in ('PYTHON_IMAGE', 'SUPERCRONIC_URL', 'SUPERCRONIC_SHA256')
            if os.environ.get(arg)]
    with _built(f'mytom-k8s-{os.getpid()}:tests', REPO, Path(directory) / 'image.tar', 'docker build',
                '--network', 'host', *args, timeout=1500) as made:
        yield made


@contextlib.contextmanager
def image_with_a_migration(directory, base):
    """(name, archive) of the image `base` plus one more (empty) migration of myapp: the next
    release of the TOM, as an upgrade meets it."""
    latest = sorted(path.stem for path in (REPO / 'myapp' / 'migrations').glob('0*.py'))[-1]
    context = Path(directory) / 'next-release'
    context.mkdir()
    (context / '9999_next_release.py').write_text(
        'from django.db import migrations\n\n\n'
        f'class Migration(migrations.Migration):\n    dependencies = [("myapp", "{latest}")]\n    operations = []\n')
    (context / 'Dockerfile').write_text(f'FROM {base}\nCOPY 9999_next_release.py /app/myapp/migrations/\n')
    with _built(base.rsplit(':', 1)[0] + ':next', context, context / 'image.tar',
                'docker build of the next release', timeout=600) as made:
        yield made


@contextlib.contextmanager
def _built(name, context, archive, what, *build_args, timeout):
    """(name, archive): the image built from the context and saved for the nodes' containerd;
    both removed after."""
    try:
        built = subprocess.run(['docker', 'build', *build_args, '-t', name, str(context)], capture_output=True,
                               text=True, timeout=timeout)
        if built.returncode != 0:
            raise SetUpFailed(f'{what} failed:\n{built.stderr[-3000:]}')
        subprocess.run(['docker', 'save', '-o', str(archive), name], check=True, capture_output=True, timeout=600)
        yield name, archive
    finally:
        subprocess.run(['docker', 'image', 'rm', '-f', name], capture_output=True)
        archive.unlink(missing_ok=True)


class World:
    """The cluster and what stands outside it."""

    def __init__(self, cluster, postgres, lco, atlas, s3_url, image_name):
        self.cluster, self.postgres, self.lco, self.atlas = cluster, postgres, lco, atlas
        self.s3_url, self.image = s3_url, image_name
        self.s3 = boto3.client('s3', endpoint_url=s3_url, region_name='us-east-1', aws_access_key_id='tests',
                               aws_secret_access_key='tests-secret')
        self.timings = cluster.timings

    def sql(self, query, *params, database='tom'):
        with psycopg.connect(self.postgres.url(database), autocommit=True) as connection:
            return connection.execute(query, params).fetchall()

    def runs(self, name='save_data'):
        return self.sql('SELECT id, trigger, outcome, scheduled_for, host, summary FROM myapp_jobrun '
                        'WHERE name = %s ORDER BY id', name)

    def pods(self, component, release=RELEASE):
        return self.cluster.get('pods', '-l', f'app.kubernetes.io/instance={release},'
                                f'app.kubernetes.io/component={component}')['items']


    def manage_in(self, pod, code):
        """What the Python code prints, run by `manage.py shell` in a pod."""
        done = self.cluster.kubectl('exec', pod, '--', '/app/docker/entrypoint.sh', 'python', 'manage.py', 'shell',
                                    '-c', code, timeout=120)
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ''

    def install(self, directory, crontab, *extra, release=RELEASE, database='tom'):
        """The chart, its CronJobs from the crontab text, installed as `release` on `database`
        (made here if it is not 'tom') and waited for."""
        if database != 'tom':
            self.postgres.sql(f'CREATE DATABASE {database}')
        chart = chart_with_crontab(Path(directory) / release, crontab)
        started = time.monotonic()
        self.cluster.helm('install', release, str(chart), *self.values(database), *extra,
                          '--wait', '--timeout', '6m', timeout=420)
        self.timings.setdefault('helm install --wait', time.monotonic() - started)
        return chart

    def values(self, database='tom'):
        repository, tag = self.image.split(':')
        settings = {
            'image.repository': repository, 'image.tag': tag, 'image.pullPolicy': 'Never',
            'secrets.SECRET_KEY': 'kubernetes-tests-secret-key',
            'secrets.DATABASE_URL': self.postgres.url(database, host=HOST_ADDRESS),
            'secrets.LCO_API_KEY': 'test-key', 'secrets.AWS_ACCESS_KEY_ID': 'tests',
            'secrets.AWS_SECRET_ACCESS_KEY': 'tests-secret', 'secrets.BACKUP_PASSPHRASE': PASSPHRASE,
            'config.ALLOWED_HOSTS': HOST, 'config.LCO_PORTAL_URL': self.lco.url,
            'config.LCO_ARCHIVE_URL': self.lco.url, 'config.TOM_HTTP_TIMEOUT': '10',
            'config.AWS_STORAGE_BUCKET_NAME': 'tom-data', 'config.AWS_S3_ENDPOINT_URL': self.s3_url,
            'config.AWS_S3_REGION_NAME': 'us-east-1', 'config.BACKUP_REPOSITORY': f's3:{self.s3_url}/tom-backups',
            'config.ATLAS_URL': self.atlas.url, 'secrets.ATLAS_API_KEY': self.atlas.api_key,
            'config.DJANGO_SUPERUSER_USERNAME': ADMIN, 'config.DJANGO_SUPERUSER_EMAIL': 'admin@example.org',
            'secrets.DJANGO_SUPERUSER_PASSWORD': ADMIN_PASSWORD,
        }
        # `jobs check` every 5 minutes would only add pods to the tests' minutes.
        return ['--set', 'overdueCheck.enabled=false',
                *[arg for name, value in settings.items() for arg in ('--set-string', f'{name}={value}')]]


def chart_with_crontab(directory, crontab):
    """A copy of the chart whose CronJobs come from the crontab text (`jobs export`)."""
    chart = Path(directory) / 'chart' / 'mytom'
    shutil.copytree(CHART, chart)
    path = chart.parent / 'crontab'
    path.write_text(crontab)
    env = {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': 'tests-only',
           'DATA_DIR': str(chart.parent / 'data')}
    exported = run_job(env, 'jobs', 'export', '--kubernetes', '--crontab', str(path))
    if exported.returncode != 0:
        raise SetUpFailed(f'jobs export failed: {exported.stderr}')
    (chart / 'crontab-jobs.yaml').write_text(exported.stdout)
    return chart


@contextlib.contextmanager
def world(directory, image_name, archive, nodes=2):
    """The cluster with `nodes` real nodes holding the image, and the services outside it."""
    directory = Path(directory)
    cluster = Cluster(tool('build.sh'), directory / 'cluster', node_parts=tool('node-parts.sh'), nodes=nodes)
    postgres = lco = atlas = stop_s3 = None
    try:
        started = time.monotonic()
        cluster.start()
        cluster.timings = {'cluster up': time.monotonic() - started}
        started = time.monotonic()
        failed = []

        def import_into(node):
            try:
                node.import_image(archive)
            except subprocess.CalledProcessError as error:
                failed.append(f'{node.name}: {error.stderr.decode()[-2000:]}')

        importing = [threading.Thread(target=import_into, args=(node,)) for node in cluster.nodes]
        for thread in importing:
            thread.start()
        # Not under pytest's own folder, which only root may enter: the server runs as postgres.
        postgres = PostgresServer(tempfile.mkdtemp(prefix='mytom-postgres-'), also_listen=HOST_ADDRESS).start()
        postgres.sql('CREATE DATABASE tom')
        lco = FakeLCO(host=HOST_ADDRESS).start()
        atlas = FakeAtlas(host=HOST_ADDRESS).start()
        s3_url, stop_s3 = start_s3_server(host=HOST_ADDRESS)
        found = World(cluster, postgres, lco, atlas, s3_url, image_name)
        for bucket in ('tom-data', 'tom-backups'):
            found.s3.create_bucket(Bucket=bucket)
        for thread in importing:
            thread.join()
        if failed:
            raise SetUpFailed(f'importing the image failed: {failed}')
        cluster.timings['image into the nodes'] = time.monotonic() - started
        yield found
    finally:
        if stop_s3:
            stop_s3()
        if lco:
            lco.stop()
        if atlas:
            atlas.stop()
        if postgres:
            postgres.stop()
            shutil.rmtree(postgres.directory, ignore_errors=True)
        cluster.stop()
