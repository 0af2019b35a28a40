"""Taking a snapshot: the database copied consistently, then the data product files, the
secret key and the manifest, in one restic snapshot; then old snapshots pruned by BACKUP_KEEP."""
import json
import shutil
import time
from pathlib import Path

from django.conf import settings
from filelock import FileLock, Timeout

from myapp.backups import database, manifest, records, restic
from myapp.backups.restic import BackupError
from myapp.backups.retention import restic_arguments
from myapp.jobs.timing import format_duration

SECRETS = 'secrets.json'
LOCK_WAIT = 3 * 3600  # the crontab's timeout of a backup


def stage_folder():
    """Where a snapshot's database copy and manifest are made: always the same folder, so that
    each backup finds its parent snapshot and reads only the files that changed."""
    return Path(settings.DATA_DIR) / 'backup-stage'


def create(kind, note='', say=print, prune=True):
    """Takes a snapshot and returns its id; a BackupError says what failed. One at a time per
    DATA_DIR (a scheduled one and a pre-upgrade one would share the stage folder)."""
    lock = FileLock(Path(settings.DATA_DIR) / 'backup-stage.lock')
    try:
        lock.acquire(timeout=LOCK_WAIT)
    except Timeout:
        raise BackupError(f'another backup of this TOM has been running for over {format_duration(LOCK_WAIT)}')
    try:
        return _create(kind, note, say, prune)
    finally:
        lock.release()


def _create(kind, note, say, prune):
    started = time.monotonic()
    warning = restic.unconfigured_warning()
    if warning:
        say(f'backup: warning: {warning}')
    if restic.ensure_repository():
        say(f'backup: created the backup repository {restic.repository_name()}')
    stage = stage_folder()
    if stage.exists():
        for leftover in stage.iterdir():
            if leftover.name != manifest.CHECKSUMS_CACHE:
                leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    stage.mkdir(parents=True, exist_ok=True)
    stage.chmod(0o700)
    try:
        tables = database.dump(stage)
        secret_file = stage / SECRETS
        secret_file.touch(mode=0o600)
        secret_file.write_text(json.dumps({'SECRET_KEY': settings.SECRET_KEY,
                                           'SECRET_KEY_FALLBACKS': list(settings.SECRET_KEY_FALLBACKS)}))
        held = manifest.build(kind, note, tables, stage, stage)
        (stage / manifest.NAME).write_text(json.dumps(held, indent=1))
        paths = [str(stage)]
        if held['media']['storage'] == 'filesystem':
            Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
            paths.append(str(settings.MEDIA_ROOT))
        rows = sum(tables.values())
        tag_args = [part for tag in records.tags(kind, rows, len(held['media']['files'])) for part in ('--tag', tag)]
        done = restic.run('backup', '--quiet', '--host', restic.HOST, *tag_args,
                          '--exclude', str(stage / manifest.CHECKSUMS_CACHE), *paths, json_output=True)
    finally:
        for name in (SECRETS, database.SQLITE_FILE, database.POSTGRES_FILE):
            (stage / name).unlink(missing_ok=True)
    messages = done.parsed if isinstance(done.parsed, list) else [done.parsed]
    summary = next(item for item in reversed(messages) if item and item.get('message_type') == 'summary')
    snapshot_id = summary['snapshot_id']
    files = len(held['media']['files'])
    line = (f'backup: snapshot {snapshot_id[:8]} ({kind}) taken in {format_duration(time.monotonic() - started)}: '
            f'{len(tables)} tables ({rows} rows), {files} data product file(s), '
            f'{_size(summary.get("total_bytes_processed", 0))} in all, '
            f'{_size(summary.get("data_added_packed", summary.get("data_added", 0)))} added to '
            f'{restic.repository_name()}')
    if held['media']['storage'] == 's3':
        line += f'; data products are in the bucket {settings.AWS_STORAGE_BUCKET_NAME}, not in the snapshot'
    say(line)
    if prune:
        pruned = restic.run('forget', '--quiet', '--host', restic.HOST, '--prune',
                            *restic_arguments(settings.BACKUP_KEEP_RULES), check=False)
        if pruned.returncode == restic.LOCKED:  # another backup or verify is at work: the next backup prunes
            reason = restic.explain(pruned.returncode, pruned.stderr)
            say(f'backup: warning: old snapshots not pruned this time: {reason}')
        elif pruned.returncode != 0:
            raise BackupError(restic.explain(pruned.returncode, pruned.stderr))
    found = records.refresh()
    if prune:
        say(f'backup: {len(found)} snapshot(s) kept by BACKUP_KEEP ({settings.BACKUP_KEEP})')
    return snapshot_id


def _size(count):
    for unit in ('bytes', 'KB', 'MB', 'GB'):
        if count < 1000 or unit == 'GB':
            return f'{count:.0f} {unit}' if unit == 'bytes' else f'{count:.1f} {unit}'
        count /= 1000
    return f'{count:.1f} TB'
