"""The snapshots as the database keeps them (BackupSnapshot), brought up to date from the
repository, and what pages, /metrics and `jobs check` show of them."""
from datetime import datetime

from django.db import connection, transaction

from myapp.backups import restic
from myapp.models import BackupSnapshot

KIND_TAG = 'kind='
ROWS_TAG = 'rows='
FILES_TAG = 'files='


def tags(kind, rows, files):
    """What `backup list` shows without opening each snapshot: its kind, database rows, data files."""
    return [f'{KIND_TAG}{kind}', f'{ROWS_TAG}{rows}', f'{FILES_TAG}{files}']


def _tag(snapshot, prefix, default=''):
    for tag in snapshot.get('tags') or []:
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return default


def describe(snapshot):
    """What `backup list` shows of restic's JSON snapshot."""
    summary = snapshot.get('summary') or {}
    return {
        'snapshot_id': snapshot['id'],
        'taken_at': datetime.fromisoformat(snapshot['time']),
        'kind': _tag(snapshot, KIND_TAG, BackupSnapshot.Kind.MANUAL),
        'size': summary.get('total_bytes_processed', 0),
        'files': int(_tag(snapshot, FILES_TAG, '0') or 0),
        'rows': int(_tag(snapshot, ROWS_TAG, '0') or 0),
        'added': summary.get('data_added_packed'),
    }


def sync(snapshots):
    """Makes BackupSnapshot what the repository lists (restic's JSON snapshots). Before the
    migration that makes their table (a pre-upgrade snapshot), the repository alone keeps them."""
    if BackupSnapshot._meta.db_table in connection.introspection.table_names():
        _sync(snapshots)


@transaction.atomic
def _sync(snapshots):
    listed = {item['snapshot_id']: item for item in map(describe, snapshots)}
    BackupSnapshot.objects.exclude(snapshot_id__in=listed).delete()
    known = set(BackupSnapshot.objects.values_list('snapshot_id', flat=True))
    for snapshot_id, item in listed.items():
        if snapshot_id in known:
            BackupSnapshot.objects.filter(snapshot_id=snapshot_id).update(
                **{key: value for key, value in item.items() if key != 'snapshot_id'})
        else:
            BackupSnapshot.objects.create(**item)


def refresh():
    """Brings the records up to date from the repository; returns restic's list."""
    found = restic.snapshots()
    sync(found)
    return found
