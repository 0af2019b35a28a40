"""Backups (`manage.py backup`), as an operator runs them: a TOM with users, an MFA secret,
targets, photometry, data product files, job history and a logged-in session is backed up
with the real restic, and restored into a second, freshly migrated TOM (its own database and
data folder, its own generated secret key), where everything is as it was. Runs on SQLite,
and on PostgreSQL under tests/with_postgres.sh (each TOM a database of its own there)."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REPO, start_s3_server, tool

pytestmark = pytest.mark.backups

PASSPHRASE = 'correct horse battery staple'
TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

# Run in the first TOM: what a TOM holds after some months.
POPULATE = '''
import json, os
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from allauth.mfa.totp.internal.auth import TOTP
from tom_targets.models import Target
from tom_observations.models import ObservationRecord
from tom_dataproducts.models import DataProduct, ReducedDatum
from myapp.models import JobRun

pi = User.objects.create_user('pi', 'pi@example.org', 'a long password')
pi.is_staff = True
pi.save()
TOTP.activate(pi, TOTP_SECRET)
target = Target.objects.create(name='SN 2026abc', type='SIDEREAL', ra=150.1, dec=-30.2)
record = ObservationRecord.objects.create(target=target, facility='LCO', observation_id='4242', status='COMPLETED',
                                          parameters={})
for n in range(3):
    product = DataProduct.objects.create(target=target, observation_record=record, product_id=f'frame-{n}',
                                         data_product_type='image_file')
    product.data.save(f'frame-{n}.fits', ContentFile(os.urandom(200_000 + n)))  # frames do not compress
for n in range(50):
    ReducedDatum.objects.create(target=target, data_type='photometry', timestamp=timezone.now(),
                                value={'magnitude': 15 + n / 100, 'filter': 'r'})
JobRun.objects.create(name='save_data', command='save_data', host='h', pid=1, started_at=timezone.now(),
                      outcome='succeeded', summary='done: 1 record(s) checked')
client = Client()
assert client.login(username='pi', password='a long password')
print(json.dumps({'session': client.cookies['sessionid'].value}))
'''.replace('TOTP_SECRET', repr(TOTP_SECRET))

# Run in either TOM: what it holds, and whether a session cookie still signs its user in.
DESCRIBE = '''
import hashlib, json, sys
from django.contrib.auth.models import User
from django.test import Client
from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from tom_targets.models import Target
from tom_dataproducts.models import DataProduct, ReducedDatum
from myapp.models import JobRun

session = sys.stdin.read().strip()
client = Client()
if session:
    client.cookies['sessionid'] = session
page = client.get('/jobs/')
pi = User.objects.filter(username='pi').first()
totp = Authenticator.objects.filter(user=pi, type='totp').first()
print(json.dumps({
    'users': sorted(User.objects.values_list('username', flat=True)),
    'password_ok': bool(pi and pi.check_password('a long password')),
    'totp_secret': get_adapter().decrypt(totp.data['secret']) if totp else None,
    'targets': list(Target.objects.values_list('name', 'ra', 'dec')),
    'photometry': ReducedDatum.objects.count(),
    'products': sorted((p.product_id, hashlib.sha256(p.data.read()).hexdigest()) for p in DataProduct.objects.all()),
    'job_runs': list(JobRun.objects.values_list('name', 'summary')),
    'signed_in': page.status_code == 200 and b'Jobs' in page.content,
}))
'''


class Tom:
    """One TOM: its database, data folder, secret key file, and the backup repository it uses."""

    def __init__(self, folder, database_url, repository, key):
        self.folder = Path(folder)
        self.key_file = self.folder / 'secrets' / 'secret_key'
        self.key_file.parent.mkdir(parents=True)
        self.key_file.write_text(key + '\n')
        path = os.pathsep.join([str(Path(tool('restic')).parent), str(Path(sys.executable).parent),
                                os.environ['PATH']])
        self.env = {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': '',
                    'SECRET_KEY_FILE': str(self.key_file), 'DATA_DIR': str(self.folder / 'data'),
                    'DATABASE_URL': database_url, 'BACKUP_REPOSITORY': str(repository),
                    'BACKUP_PASSPHRASE': PASSPHRASE, 'PATH': path, 'PYTHONUNBUFFERED': '1',
                    'ALLOWED_HOSTS': 'testserver'}

    def manage(self, *args, stdin=None, env=None, timeout=300):
        return subprocess.run([sys.executable, str(REPO / 'manage.py'), *args], input=stdin,
                              env={**self.env, **(env or {})}, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args, **kwargs):
        done = self.manage(*args, **kwargs)
        assert done.returncode == 0, f'{args} failed:\n{done.stdout}\n{done.stderr}'
        return done

    def shell(self, script, stdin=''):
        return json.loads(self.ok('shell', '--no-imports', '-c', script, stdin=stdin).stdout.strip().splitlines()[-1])


@pytest.fixture
def databases():
    """Makes database URLs for new, empty databases: SQLite files, or databases on the
    PostgreSQL server the suite runs against (dropped afterwards)."""
    base = os.environ.get('DATABASE_URL', '')
    made = []

    def new(folder):
        if not base.startswith('postgres'):
            return f'sqlite:///{folder}/db.sqlite3'
        import psycopg

        name = f'backup_{uuid.uuid4().hex[:10]}'
        with psycopg.connect(_maintenance(base), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE {name}')
        made.append(name)
        return urlsplit(base)._replace(path=f'/{name}').geturl()

    yield new
    if made:
        import psycopg

        with psycopg.connect(_maintenance(base), autocommit=True) as admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


def _maintenance(url):
    """The server's `postgres` database, from which databases are made and dropped."""
    return urlsplit(url)._replace(path='/postgres').geturl()


@pytest.fixture
def first_tom(tmp_path, databases):
    """A TOM with data in it, and the session cookie of its logged-in user."""
    tom = Tom(tmp_path / 'first', databases(tmp_path / 'first'), tmp_path / 'repository', 'the-first-key' * 4)
    tom.ok('migrate', '--no-input', '-v', '0')
    session = tom.shell(POPULATE)['session']
    return tom, session


def fresh_tom(tmp_path, databases, name='second'):
    """A new stack's TOM: migrated, nothing in it, a secret key of its own."""
    tom = Tom(tmp_path / name, databases(tmp_path / name), tmp_path / 'repository', f'{name}-generated-key' * 3)
    tom.ok('migrate', '--no-input', '-v', '0')
    return tom


def test_a_restore_into_a_fresh_tom_brings_back_everything_and_its_sessions(first_tom, tmp_path, databases):
    tom, session = first_tom
    before = tom.shell(DESCRIBE, stdin=session)
    assert before['signed_in'] and before['totp_secret'] == TOTP_SECRET and len(before['products']) == 3

    made = tom.ok('backup', 'create', '--kind', 'scheduled')
    assert 'backup: created the backup repository' in made.stdout
    assert '3 data product file(s)' in made.stdout
    listed = tom.ok('backup', 'list').stdout
    assert '1 snapshot(s) in' in listed and 'scheduled' in listed

    second = fresh_tom(tmp_path, databases)
    assert second.shell(DESCRIBE, stdin=session)['users'] == ['AnonymousUser']
    restored = second.ok('backup', 'restore', 'latest')
    assert 'backup: restored snapshot' in restored.stdout
    assert 'docker compose restart web cron' in restored.stdout
    # The key is written back where the TOM reads it: processes started now use it.
    assert second.key_file.read_text().strip() == tom.key_file.read_text().strip()

    after = second.shell(DESCRIBE, stdin=session)
    assert after == before
    assert second.shell(DESCRIBE, stdin='')['signed_in'] is False  # the cookie does it, not an open page


def test_a_second_backup_of_an_unchanged_tom_adds_little(first_tom):
    tom, _ = first_tom
    tom.ok('backup', 'create')
    again = tom.ok('backup', 'create').stdout
    listed = tom.ok('backup', 'list').stdout.splitlines()
    assert len(listed) == 4, listed  # the count, the header, two snapshots
    first_added, second_added = (_bytes(line.split()[-2], line.split()[-1]) for line in listed[2:][::-1])
    assert second_added < first_added / 3, (first_added, second_added, again)


def _bytes(number, unit):
    return float(number) * {'bytes': 1, 'KB': 1e3, 'MB': 1e6, 'GB': 1e9}[unit]


def test_restore_refuses_bad_input_and_changes_nothing(first_tom, tmp_path, databases):
    tom, session = first_tom
    tom.ok('backup', 'create')
    second = fresh_tom(tmp_path, databases)
    key = second.key_file.read_text()
    empty = second.shell(DESCRIBE)

    wrong = second.manage('backup', 'restore', 'latest', env={'BACKUP_PASSPHRASE': 'not the passphrase'})
    unknown = second.manage('backup', 'restore', 'deadbeef')
    nowhere = second.manage('backup', 'restore', 'latest', env={'BACKUP_REPOSITORY': str(tmp_path / 'none')})
    other_key = second.manage('backup', 'restore', 'latest', env={'SECRET_KEY': 'a-key-from-the-environment'})
    onto_data = tom.manage('backup', 'restore', 'latest')

    assert (wrong.returncode, wrong.stderr.strip().splitlines()[-1]) == (
        1, f'CommandError: backup repository {tmp_path / "repository"}: wrong passphrase: the repository cannot '
           'be opened with BACKUP_PASSPHRASE')
    assert unknown.returncode == 1 and "no snapshot 'deadbeef'" in unknown.stderr
    assert nowhere.returncode == 1 and 'does not exist or cannot be reached' in nowhere.stderr
    assert other_key.returncode == 1 and 'SECRET_KEY is set in the environment' in other_key.stderr
    assert onto_data.returncode == 1 and 'already holds data (1 user(s)' in onto_data.stderr
    for done in (wrong, unknown, nowhere, other_key, onto_data):
        assert 'Traceback' not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert second.key_file.read_text() == key
    assert second.shell(DESCRIBE) == empty


def test_restore_with_force_over_data_takes_a_snapshot_of_it_first(first_tom, tmp_path):
    tom, session = first_tom
    tom.ok('backup', 'create')
    tom.shell('from tom_targets.models import Target; Target.objects.all().delete(); print("{}")')
    assert tom.shell(DESCRIBE, stdin=session)['targets'] == []

    restored = tom.ok('backup', 'restore', 'latest', '--force').stdout
    assert 'taking a snapshot of it first' in restored and '(before-restore)' in restored
    assert tom.shell(DESCRIBE, stdin=session)['targets'] == [['SN 2026abc', 150.1, -30.2]]
    assert 'before-restore' in tom.ok('backup', 'list').stdout


def test_a_snapshot_from_a_newer_schema_is_refused(first_tom, tmp_path, databases):
    tom, _ = first_tom
    # A migration this code does not have, as a newer version of the TOM would have applied.
    tom.shell('from django.db.migrations.recorder import MigrationRecorder; from django.db import connection; '
              'MigrationRecorder(connection).record_applied("myapp", "9999_from_the_future"); print("{}")')
    tom.ok('backup', 'create')
    second = fresh_tom(tmp_path, databases)

    refused = second.manage('backup', 'restore', 'latest')

    assert refused.returncode == 1
    assert 'is from a newer version of this TOM' in refused.stderr and 'myapp.9999_from_the_future' in refused.stderr
    assert second.shell(DESCRIBE)['users'] == ['AnonymousUser']


def test_verify_passes_then_finds_a_flipped_byte_in_a_pack(first_tom, tmp_path):
    tom, _ = first_tom
    tom.ok('backup', 'create')
    verified = tom.ok('backup', 'verify').stdout
    assert 'verified the repository and snapshot' in verified and 'as recorded' in verified

    packs = sorted((tmp_path / 'repository' / 'data').rglob('*'), key=lambda p: p.stat().st_size if p.is_file() else 0)
    pack = packs[-1]
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))

    damaged = tom.manage('backup', 'verify')
    assert damaged.returncode == 1
    assert 'is damaged' in damaged.stderr and 'Traceback' not in damaged.stderr, damaged.stderr
    assert pack.name[:8] in damaged.stderr or 'pack' in damaged.stderr.lower(), damaged.stderr


def test_verify_names_a_table_whose_rows_differ_from_the_manifest(first_tom, tmp_path):
    """A snapshot whose database copy does not hold what its manifest says fails verify,
    naming the table (made here by a manifest written by hand, as a bug would)."""
    tom, _ = first_tom
    done = tom.ok('backup', 'create')
    assert done
    restic_env = {**tom.env, 'RESTIC_REPOSITORY': str(tmp_path / 'repository'), 'RESTIC_PASSWORD': PASSPHRASE}
    snapshots = json.loads(subprocess.run([tool('restic'), 'snapshots', '--json'], env=restic_env,
                                          capture_output=True, text=True, check=True).stdout)
    stage = next(path for path in snapshots[-1]['paths'] if path.endswith('backup-stage'))
    manifest = json.loads(subprocess.run([tool('restic'), 'dump', 'latest', f'{stage}/manifest.json'], env=restic_env,
                                         capture_output=True, text=True, check=True).stdout)
    manifest['database']['tables']['tom_targets_basetarget'] += 1
    # A new snapshot of the same stage folder with that manifest, the database copy as it was.
    subprocess.run([tool('restic'), 'restore', 'latest', '--target', str(tmp_path / 'out')], env=restic_env,
                   check=True, capture_output=True)
    copy = tmp_path / 'out' / stage.lstrip('/')
    (copy / 'manifest.json').write_text(json.dumps(manifest))
    Path(stage).mkdir(parents=True, exist_ok=True)
    for item in copy.iterdir():
        (Path(stage) / item.name).write_bytes(item.read_bytes())
    subprocess.run([tool('restic'), 'backup', '--host', 'tom', stage], env=restic_env, check=True,
                   capture_output=True)

    failed = tom.manage('backup', 'verify')

    assert failed.returncode == 1
    assert 'does not restore as recorded: tom_targets_basetarget: 2 row(s) recorded, 1 restored' in failed.stderr


def test_retention_prunes_by_backup_keep(first_tom):
    tom, _ = first_tom
    for _ in range(3):
        tom.ok('backup', 'create', env={'BACKUP_KEEP': '2 last'})
    kept = tom.ok('backup', 'list').stdout.splitlines()
    assert kept[0].startswith('2 snapshot(s) in')


def test_without_a_passphrase_a_generated_one_is_used_and_said(first_tom):
    tom, _ = first_tom
    done = tom.ok('backup', 'create', env={'BACKUP_PASSPHRASE': ''})
    generated = tom.key_file.parent / 'backup_passphrase'
    assert generated.exists() and oct(generated.stat().st_mode & 0o777) == '0o600'
    assert f'backup: warning: backups are encrypted with a passphrase generated in {generated}' in done.stdout
    assert 'Set BACKUP_PASSPHRASE' in done.stdout
    tom.ok('jobs', 'loaded', str(REPO / 'crontab'))  # as the cron container records the schedule it runs
    check = tom.ok('jobs', 'check', env={'BACKUP_PASSPHRASE': ''})  # a warning: the check stays green
    assert 'WARNING backup: backups are encrypted with a passphrase generated' in check.stdout
    assert 'WARNING' not in tom.ok('jobs', 'check').stdout


def test_before_migrate_takes_a_pre_upgrade_snapshot_only_when_migrations_are_due(first_tom):
    tom, _ = first_tom
    assert tom.ok('backup', 'before-migrate').stdout == ''  # nothing to apply
    tom.ok('migrate', 'myapp', '0008', '--no-input', '-v', '0')  # as an older version of the TOM left it

    done = tom.ok('backup', 'before-migrate').stdout
    assert '1 migration(s) to apply (myapp.0009_backup_snapshots): taking a snapshot first' in done
    assert '(pre-upgrade)' in done
    off = tom.ok('backup', 'before-migrate', env={'BACKUP_BEFORE_MIGRATE': 'false'}).stdout
    assert 'no snapshot first (BACKUP_BEFORE_MIGRATE is off)' in off
    failing = tom.manage('backup', 'before-migrate', env={'BACKUP_PASSPHRASE': 'not the passphrase'})
    assert failing.returncode == 1
    assert 'the snapshot before migrating failed, so nothing was migrated' in failing.stderr


def test_a_bucket_as_the_repository(first_tom, tmp_path, databases):
    """BACKUP_REPOSITORY in an S3-compatible bucket (moto's server on 127.0.0.1, over HTTP)."""
    import boto3

    url, stop = start_s3_server()
    try:
        boto3.client('s3', endpoint_url=url, region_name='us-east-1', aws_access_key_id='tests',
                     aws_secret_access_key='tests-secret').create_bucket(Bucket='tom-backups')
        bucket = {'BACKUP_REPOSITORY': f's3:{url}/tom-backups/mytom', 'AWS_ACCESS_KEY_ID': 'tests',
                  'AWS_SECRET_ACCESS_KEY': 'tests-secret', 'AWS_DEFAULT_REGION': 'us-east-1'}
        tom, session = first_tom
        tom.env.update(bucket)
        before = tom.shell(DESCRIBE, stdin=session)
        assert '3 data product file(s)' in tom.ok('backup', 'create').stdout
        second = fresh_tom(tmp_path, databases)
        second.env.update(bucket)
        second.ok('backup', 'restore', 'latest')
        assert second.shell(DESCRIBE, stdin=session) == before
        assert 'as recorded' in second.ok('backup', 'verify').stdout
    finally:
        stop()
    gone = second.manage('backup', 'list')
    assert gone.returncode == 1 and 'cannot be reached (BACKUP_REPOSITORY)' in gone.stderr, gone.stderr
