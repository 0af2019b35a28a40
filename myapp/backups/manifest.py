"""What a snapshot holds, recorded inside it as manifest.json: the row count of every table,
each data product file's size and sha256, the migrations applied, and the versions of this
project and of TOM Toolkit. `verify` and `restore` compare what they get back with it."""
import hashlib
import json
import os
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

FORMAT = 1
NAME = 'manifest.json'
CHECKSUMS_CACHE = 'checksums.json'  # beside the staged files, never in a snapshot


def build(kind, note, tables, stage, cache_folder):
    return {
        'format': FORMAT,
        'created_at': timezone.now().isoformat(),
        'kind': kind,
        'note': note,
        'tom_name': settings.TOM_NAME,
        'versions': versions(),
        'database': {'vendor': connection.vendor, 'tables': tables},
        'migrations': applied_migrations(),
        'media': media(cache_folder),
        'stage': str(stage),
    }


def versions():
    found = {'tomtoolkit': metadata.version('tomtoolkit'), 'django': metadata.version('django')}
    try:
        found['mytom'] = tomllib.loads((Path(settings.BASE_DIR) / 'pyproject.toml').read_text())['project']['version']
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        found['mytom'] = 'unknown'
    commit = os.environ.get('SOURCE_COMMIT') or _git_commit()
    if commit:
        found['commit'] = commit
    return found


def _git_commit():
    try:
        done = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=settings.BASE_DIR, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ''
    return done.stdout.strip() if done.returncode == 0 else ''


def applied_migrations():
    """{app: [migration, ...]} as the database records them (read from its table: loading
    every app's migrations to ask would cost the backup 80 MB)."""
    applied = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        applied.setdefault(app, []).append(name)
    return applied


def unknown_migrations(recorded):
    """The migrations a snapshot had applied that this code does not have: a newer schema."""
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    return sorted(f'{app}.{name}' for app, names in recorded.items() for name in names if (app, name) not in known)


def media(cache_folder):
    """The data product files: {path under MEDIA_ROOT: [size, sha256]}. Checksums of files whose
    size, mtime and inode are unchanged come from the last backup's cache: a second backup of
    an unchanged TOM reads no file twice."""
    if settings.AWS_STORAGE_BUCKET_NAME:
        return {'storage': 's3', 'bucket': settings.AWS_STORAGE_BUCKET_NAME, 'files': {}}
    root = Path(settings.MEDIA_ROOT)
    cache_path = Path(cache_folder) / CHECKSUMS_CACHE
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    files, fresh = {}, {}
    for path in sorted(root.rglob('*')) if root.exists() else []:
        if not path.is_file() or path.is_symlink():
            continue
        stat = path.stat()
        name = path.relative_to(root).as_posix()
        key = f'{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}'
        cached = cache.get(name)
        digest = cached[1] if cached and cached[0] == key else sha256(path)
        fresh[name] = [key, digest]
        files[name] = [stat.st_size, digest]
    cache_path.write_text(json.dumps(fresh))
    return {'storage': 'filesystem', 'root': str(root), 'files': files}


def sha256(path_or_stream):
    digest = hashlib.sha256()
    if isinstance(path_or_stream, (str, Path)):
        with open(path_or_stream, 'rb') as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    else:
        while chunk := path_or_stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def differences(expected, found):
    """The tables whose row counts differ, as `table: N in the snapshot, M restored` lines."""
    lines = []
    for table in sorted(set(expected) | set(found)):
        if expected.get(table) != found.get(table):
            lines.append(f'{table}: {expected.get(table, "none")} row(s) recorded, {found.get(table, "none")} restored')
    return lines
