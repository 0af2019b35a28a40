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
from myapp.timing import format_duration

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
        backup = ['backup', '--quiet', '--host', restic.HOST, *tag_args,
                  '--exclude', str(stage / manifest.CHECKSUMS_CACHE), *paths]
        done = restic.run(*backup, json_output=True, check=False)
        if done.returncode == restic.NO_REPOSITORY:  # the first backup: each restic start costs ~0.5 s
            restic.create_repository()
            say(f'backup: created the backup repository {restic.repository_name()}')
            done = restic.run(*backup, json_output=True)
        elif done.returncode != 0:
            raise BackupError(restic.explain(done.returncode, done.stderr))
    finally:
        for name in (SECRETS, database.SQLITE_FILE, database.POSTGRES_FILE):
            (stage / name).unlink(missing_ok=True)
    messages = done.parsed if isinstance(done.parsed, list) else [done.parsed]
    summary = next(item for item in reversed(messages) if item and item.get('message_type') == 'summary')
    snapshot_id = summary['snapshot_id']
    files = len(held['media']['files'])
    line = (f'backup: snapshot {snapshot_id[:8]} ({kind}) taken in {time.monotonic() - started:.1f} s: '
            f'{len(tables)} tables ({rows} rows), {files} data product file(s), '
            f'{human_size(summary.get("total_bytes_processed", 0))} in all, '
            f'{human_size(summary.get("data_added_packed", summary.get("data_added", 0)))} added to '
            f'{restic.repository_name()}')
    if held['media']['storage'] == 's3':
        line += f'; data products are in the bucket {settings.AWS_STORAGE_BUCKET_NAME}, not in the snapshot'
    say(line)
    if prune and _prune(say):
        return snapshot_id
    records.refresh()
    return snapshot_id


def _prune(say):
    """Forgets the snapshots BACKUP_KEEP does not keep, and their data; every pre-upgrade one is
    kept (an upgrade is rare, and the way back from it). Records what is kept; False if it could
    not run because another backup or a verify holds the repository."""
    pruned = restic.run('forget', '--quiet', '--host', restic.HOST, '--group-by', 'host', '--prune',
                        '--keep-tag', f'{records.KIND_TAG}pre-upgrade', *restic_arguments(settings.BACKUP_KEEP_RULES),
                        json_output=True, check=False)
    if pruned.returncode == restic.LOCKED:  # the next backup prunes
        say(f'backup: warning: old snapshots not pruned this time: {restic.explain(pruned.returncode, pruned.stderr)}')
        return False
    if pruned.returncode != 0:
        raise BackupError(restic.explain(pruned.returncode, pruned.stderr))
    kept = [snapshot for group in pruned.parsed or [] for snapshot in group.get('keep') or []]
    records.sync(kept)
    say(f'backup: {len(kept)} snapshot(s) kept by BACKUP_KEEP ({settings.BACKUP_KEEP})')
    return True


def human_size(count):
    """Bytes as people read them: `812 bytes`, `4.2 MB`, `2.0 GB` (powers of 1000)."""
    if count < 1000:
        return f'{count:.0f} bytes'
    for unit in ('KB', 'MB', 'GB'):
        count /= 1000
        if count < 1000 or unit == 'GB':
            return f'{count:.1f} {unit}'
