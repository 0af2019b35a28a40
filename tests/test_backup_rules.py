"""The backups' rules, in this process with a chosen clock: BACKUP_KEEP's reading, when the
newest snapshot is too old for `jobs check`, and what the Jobs page, its JSON and /metrics
show of the snapshots (recorded as restic lists them)."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from myapp.backups import records, status
from myapp.backups.database import for_server
from myapp.backups.retention import parse_keep, restic_arguments
from myapp.jobs import schedule
from myapp.models import BackupSnapshot
from myapp.overview import report as overview

CRONTAB = ('5 * * * * python manage.py jobs run save_data\n'
           '47 2 * * * python manage.py jobs run --name backup --timeout 3h backup create --kind scheduled\n')


def test_a_dump_by_pg_dump_17_loads_into_an_older_postgresql_without_the_setting_it_refuses():
    # The head of a dump by the image's pg_dump 17 (Debian trixie), as a Kubernetes restore met it.
    head = (b"SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n"
            b"SET transaction_timeout = 0;\nSET client_encoding = 'UTF8';\n")

    older = for_server(head, 150014)

    assert b'transaction_timeout' not in older
    assert older == head.replace(b'SET transaction_timeout = 0;\n', b'')
    assert for_server(head, 170006) == head


def test_backup_keep_reads_as_restic_rules():
    assert restic_arguments(parse_keep('7 daily, 4 weekly, 12 monthly')) == [
        '--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '12']
    assert parse_keep(' 3 last ') == {'last': 3}
    for bad in ('', '7 days', '0 daily', 'daily 7', '7 daily; 4 weekly'):
        with pytest.raises(ValueError):
            parse_keep(bad)


def snapshot(taken_at, kind='scheduled', **fields):
    return BackupSnapshot.objects.create(snapshot_id=f'{taken_at.timestamp():064.0f}', taken_at=taken_at, kind=kind,
                                         size=2_000_000, rows=120, files=3, **fields)


@pytest.mark.django_db
def test_the_newest_snapshot_is_too_old_past_backup_max_age_only_while_backups_are_scheduled(settings):
    settings.BACKUP_MAX_AGE = 26 * 3600
    now = timezone.now()
    schedule.record_load(CRONTAB)
    lines = list(schedule.current()[1].jobs().values())
    snapshot(now - timedelta(hours=30), kind='pre-upgrade')
    snapshot(now - timedelta(hours=25))

    assert not status.state(now, lines).too_old
    later = now + timedelta(hours=1, minutes=1)
    late = status.state(later, lines)
    assert late.too_old and late.newest.kind == 'scheduled'
    assert late.overdue_line().startswith('OVERDUE backup: the newest snapshot, ')
    assert late.overdue_line().endswith(', 26h1m ago (BACKUP_MAX_AGE 26h)')
    assert not status.state(later, lines[:1]).too_old  # no backup job in the crontab: nothing to judge


@pytest.mark.django_db
def test_a_new_deployment_counts_from_when_the_backup_job_was_first_scheduled(settings):
    settings.BACKUP_MAX_AGE = 26 * 3600
    schedule.record_load(CRONTAB)
    report = overview.report(check_commands=False)
    assert report.backup.newest is None and not report.backup.too_old

    late = overview.report(now=timezone.now() + timedelta(hours=27), check_commands=False)
    lines, verdict = overview.verdict(late)
    assert late.backup.too_old
    assert any(line.startswith('OVERDUE backup: no snapshot since the backup job was scheduled at ') for line in lines)
    assert verdict.endswith(', backup too old')


@pytest.mark.django_db
def test_the_passphrase_warning_stays_until_one_is_set_wherever_backups_are_in_use(settings):
    settings.BACKUP_PASSPHRASE = ''
    schedule.record_load(CRONTAB)
    lines = list(schedule.current()[1].jobs().values())
    assert 'Set BACKUP_PASSPHRASE' in status.state(timezone.now(), lines).warning
    assert status.state(timezone.now(), lines[:1]).warning == ''  # no backup scheduled, none taken
    snapshot(timezone.now(), kind='pre-upgrade')
    assert 'Set BACKUP_PASSPHRASE' in status.state(timezone.now(), lines[:1]).warning
    settings.BACKUP_PASSPHRASE = 'kept elsewhere'
    assert status.state(timezone.now(), lines).warning == ''


@pytest.mark.django_db
def test_records_follow_what_the_repository_lists():
    def listed(snapshot_id, when, kind):
        return {'id': snapshot_id, 'time': when.isoformat(), 'tags': [f'kind={kind}', 'rows=40', 'files=2'],
                'summary': {'total_bytes_processed': 1234, 'data_added_packed': 99}}
    now = timezone.now()
    records.sync([listed('a' * 64, now - timedelta(days=2), 'scheduled'), listed('b' * 64, now, 'pre-upgrade')])
    records.sync([listed('b' * 64, now, 'pre-upgrade')])  # a pruned by BACKUP_KEEP

    kept = list(BackupSnapshot.objects.values_list('snapshot_id', 'kind', 'rows', 'files', 'size', 'added'))
    assert kept == [('b' * 64, 'pre-upgrade', 40, 2, 1234, 99)]


@pytest.mark.django_db
def test_the_jobs_page_its_json_and_metrics_show_the_newest_snapshot_and_the_last_verify(client, settings):
    settings.METRICS_TOKEN = 'token'
    settings.BACKUP_PASSPHRASE = 'kept elsewhere'
    schedule.record_load(CRONTAB)
    now = timezone.now()
    verified = snapshot(now - timedelta(days=3), verified_at=now - timedelta(days=1), verified_ok=True,
                        verify_detail='56 tables and 3 file(s) as recorded')
    newest = snapshot(now - timedelta(hours=2))
    client.force_login(User.objects.create_user('pi'))

    page = client.get('/jobs/').content.decode()
    section = page.split('id="backups"')[1]
    assert newest.snapshot_id[:8] in section and '2 in <code>' in section
    assert 'restores as recorded' in section and verified.snapshot_id[:8] in section
    assert 'backups-warning' not in page and 'backups-too-old' not in page

    backups = client.get('/api/jobs/').json()['backups']
    assert backups['newest']['id'] == newest.snapshot_id and backups['snapshots'] == 2
    assert backups['last_verified']['verified_ok'] is True and backups['too_old'] is False

    metrics = client.get('/metrics', HTTP_AUTHORIZATION='Bearer token').content.decode()
    found = {sample.name: sample.value for family in text_string_to_metric_families(metrics)
             for sample in family.samples if sample.name.startswith('tom_backup')}
    assert found == {'tom_backup_snapshots': 2, 'tom_backup_last_size_bytes': 2_000_000,
                     'tom_backup_last_success_timestamp_seconds': newest.taken_at.timestamp(),
                     'tom_backup_last_verify_timestamp_seconds': verified.verified_at.timestamp(),
                     'tom_backup_last_verify_ok': 1}
