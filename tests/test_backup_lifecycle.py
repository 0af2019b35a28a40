"""Backups, the rest of their life: `backup verify` finding a damaged repository or snapshot,
retention, the generated passphrase and its warning, the pre-upgrade snapshot, and a bucket as
the repository (moto's S3 server on 127.0.0.1). SQLite, and PostgreSQL under with_postgres.sh."""
import json
import subprocess
from pathlib import Path

import pytest

from tests.backup_tom import DESCRIBE, PASSPHRASE
from tests.conftest import REPO, start_s3_server, tool

pytestmark = pytest.mark.backups


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
    tom.ok('migrate', 'myapp', '0009', '--no-input', '-v', '0')  # as an older version of the TOM left it

    done = tom.ok('backup', 'before-migrate').stdout
    assert '1 migration(s) to apply (myapp.0010_alert_streams): taking a snapshot first' in done
    assert '(pre-upgrade)' in done
    off = tom.ok('backup', 'before-migrate', env={'BACKUP_BEFORE_MIGRATE': 'false'}).stdout
    assert 'no snapshot first (BACKUP_BEFORE_MIGRATE is off)' in off
    failing = tom.manage('backup', 'before-migrate', env={'BACKUP_PASSPHRASE': 'not the passphrase'})
    assert failing.returncode == 1
    assert 'the snapshot before migrating failed, so nothing was migrated' in failing.stderr


def test_a_bucket_as_the_repository(first_tom, second_tom):
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
        second = second_tom()
        second.env.update(bucket)
        second.ok('backup', 'restore', 'latest')
        assert second.shell(DESCRIBE, stdin=session) == before
        assert 'as recorded' in second.ok('backup', 'verify').stdout
    finally:
        stop()
    gone = second.manage('backup', 'list')
    assert gone.returncode == 1 and 'cannot be reached (BACKUP_REPOSITORY)' in gone.stderr, gone.stderr
