"""Backups (`manage.py backup`), as an operator runs them: a TOM with users, an MFA secret,
targets, photometry, data product files, job history and a logged-in session is backed up
with the real restic, and restored into a second, freshly migrated TOM (its own database and
data folder, its own generated secret key), where everything is as it was; and every refusal.
Runs on SQLite, and on PostgreSQL under tests/with_postgres.sh (each TOM a database of its own)."""
import pytest

from tests.backup_tom import DESCRIBE, TOTP_SECRET

pytestmark = pytest.mark.backups


def test_a_restore_into_a_fresh_tom_brings_back_everything_and_its_sessions(first_tom, second_tom):
    tom, session = first_tom
    before = tom.shell(DESCRIBE, stdin=session)
    assert before['signed_in'] and before['totp_secret'] == TOTP_SECRET and len(before['products']) == 3

    # As the scheduled backup runs: its own run is recorded running in the snapshot it takes.
    tom.shell('from django.utils import timezone; from myapp.models import JobRun; JobRun.objects.create('
              'name="backup", command="backup create --kind scheduled", host="h", pid=1, started_at=timezone.now()); '
              'print("{}")')
    made = tom.ok('backup', 'create', '--kind', 'scheduled')
    assert 'backup: created the backup repository' in made.stdout
    assert '3 data product file(s)' in made.stdout
    listed = tom.ok('backup', 'list').stdout
    assert '1 snapshot(s) in' in listed and 'scheduled' in listed

    second = second_tom()
    assert second.shell(DESCRIBE, stdin=session)['users'] == ['AnonymousUser']
    restored = second.ok('backup', 'restore', 'latest')
    assert 'backup: restored snapshot' in restored.stdout
    assert 'docker compose restart web cron' in restored.stdout
    # The key is written back where the TOM reads it: processes started now use it.
    assert second.key_file.read_text().strip() == tom.key_file.read_text().strip()

    after = second.shell(DESCRIBE, stdin=session)
    backup_run = after['job_runs'].pop(0) if after['job_runs'][0][0] == 'backup' else after['job_runs'].pop()
    assert backup_run[1].endswith('taken (recorded as succeeded by the restore of it)'), backup_run
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


def test_restore_refuses_bad_input_and_changes_nothing(first_tom, second_tom, tmp_path):
    tom, session = first_tom
    tom.ok('backup', 'create')
    second = second_tom()
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


def test_a_snapshot_from_a_newer_schema_is_refused(first_tom, second_tom):
    tom, _ = first_tom
    # A migration this code does not have, as a newer version of the TOM would have applied.
    tom.shell('from django.db.migrations.recorder import MigrationRecorder; from django.db import connection; '
              'MigrationRecorder(connection).record_applied("myapp", "9999_from_the_future"); print("{}")')
    tom.ok('backup', 'create')
    second = second_tom()

    refused = second.manage('backup', 'restore', 'latest')

    assert refused.returncode == 1
    assert 'is from a newer version of this TOM' in refused.stderr and 'myapp.9999_from_the_future' in refused.stderr
    assert second.shell(DESCRIBE)['users'] == ['AnonymousUser']
