"""Bringing a TOM back as it was at a snapshot: its database, its data product files byte for
byte, and its secret key. Everything is checked, fetched and compared with the manifest before
anything of the TOM is changed: a wrong passphrase, an unknown or damaged snapshot, a schema
newer than this code or a TOM that already holds data stop it with nothing changed."""
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from myapp.backups import create, database, manifest, records, restic
from myapp.backups.restic import BackupError
from myapp.timing import format_duration

# Tables a TOM that was only migrated, and whose cron container started, already has rows in.
HOUSEKEEPING = ('django_migrations', 'django_content_type', 'auth_permission', 'auth_group', 'django_site',
                'django_session', 'django_tasks_database_dbtaskresult',
                # one row per user (AnonymousUser's too), made as each user is: users are counted instead
                'tom_common_profile', 'authtoken_token')


def stage_path(snapshot):
    """Where the snapshot's manifest and database copy are, in it."""
    for path in snapshot.get('paths') or []:
        if path.rstrip('/').endswith('/' + create.stage_folder().name):
            return path.rstrip('/')
    raise BackupError(f'snapshot {snapshot["short_id"]} is not a snapshot of a TOM '
                      f'(it has no {create.stage_folder().name})')


def read_manifest(snapshot):
    with tempfile.TemporaryFile() as out:
        restic.run('dump', snapshot['id'], f'{stage_path(snapshot)}/{manifest.NAME}', stdout=out)
        out.seek(0)
        try:
            held = json.loads(out.read())
        except ValueError:
            raise BackupError(f'snapshot {snapshot["short_id"]}: its manifest is damaged')
    if held.get('format') != manifest.FORMAT:
        raise BackupError(f'snapshot {snapshot["short_id"]} was written by another version of this project '
                          f'(manifest format {held.get("format")})')
    return held


def holds_data():
    """What the TOM's database holds beyond what a fresh stack has, as a short phrase, or ''.
    django-guardian's AnonymousUser and the first admin a new stack makes (DJANGO_SUPERUSER_USERNAME)
    are not data; job history, schedules and sessions are the cron container's and the web server's."""
    found = []
    fresh = [getattr(settings, 'ANONYMOUS_USER_NAME', 'AnonymousUser'), os.environ.get('DJANGO_SUPERUSER_USERNAME')]
    users = get_user_model().objects.exclude(username__in=[name for name in fresh if name])
    if users.exists():
        found.append(f'{users.count()} user(s)')
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table in HOUSEKEEPING or table.startswith(('myapp_', 'auth_user', 'guardian_')):
                continue
            cursor.execute(f'SELECT COUNT(*) FROM {connection.ops.quote_name(table)}')
            rows = cursor.fetchone()[0]
            if rows:
                found.append(f'{rows} row(s) in {table}')
    return ', '.join(found[:4])


def check_secret_key(held_secrets):
    """Where the key comes from the environment, it must be the snapshot's: a restore cannot
    change it there, and the data it encrypts would be unreadable."""
    key_file = os.environ.get('SECRET_KEY_FILE', '')
    if os.environ.get('SECRET_KEY') or not key_file:
        if held_secrets['SECRET_KEY'] != settings.SECRET_KEY:
            raise BackupError('SECRET_KEY is set in the environment and is not the snapshot\'s key: set SECRET_KEY '
                              'to the key the snapshot holds (`manage.py backup secrets SNAPSHOT` prints it), '
                              'then restore again')
        return None
    return Path(key_file)


def restore(name, force=False, say=print):
    started = time.monotonic()
    snapshot = restic.find(name)
    short = snapshot['short_id']
    held = read_manifest(snapshot)
    newer = manifest.unknown_migrations(held['migrations'])
    if newer:
        raise BackupError(f'snapshot {short} is from a newer version of this TOM: its database has migrations '
                          f'this code does not know ({", ".join(newer[:3])}{"..." if len(newer) > 3 else ""}); '
                          'upgrade the code first')
    if held['database']['vendor'] != connection.vendor:
        raise BackupError(f'snapshot {short} holds a {held["database"]["vendor"]} database; this TOM runs on '
                          f'{connection.vendor}')
    present = holds_data()
    if present and not force:
        raise BackupError(f'the TOM\'s database already holds data ({present}): restoring would replace it. '
                          'Add --force to restore anyway (a snapshot of what is there is taken first)')
    workspace = Path(tempfile.mkdtemp(prefix='backup-restore-', dir=settings.DATA_DIR))
    try:
        stage = stage_path(snapshot)
        media_root = held['media'].get('root')
        restic.run('restore', snapshot['id'], '--target', str(workspace))
        fetched = workspace / stage.lstrip('/')
        held_secrets = json.loads((fetched / create.SECRETS).read_text())
        key_file = check_secret_key(held_secrets)
        files_from = workspace / media_root.lstrip('/') if media_root else None
        _compare_files(held['media']['files'], files_from, short)
        dump_file = fetched / database.dump_name(held['database']['vendor'])
        if present:
            say(f'backup: the TOM holds data ({present}): taking a snapshot of it first')
            create.create('before-restore', note=f'before restoring {short}', say=say, prune=False)
        database.load(dump_file)
        _migrate_if_behind(say)
        _settle_the_run_that_took_it(held, short)
        restored_files = _put_files(files_from, held['media']['files'])
        if key_file and key_file.read_text().strip() != held_secrets['SECRET_KEY']:
            new = key_file.with_name(f'.{key_file.name}.restored')
            new.write_text(held_secrets['SECRET_KEY'] + '\n')
            new.chmod(0o600)
            os.replace(new, key_file)
            say(f'backup: wrote the snapshot\'s secret key to {key_file}')
        fallbacks = held_secrets.get('SECRET_KEY_FALLBACKS') or []
        if fallbacks and set(fallbacks) - set(settings.SECRET_KEY_FALLBACKS):
            say('backup: warning: the snapshot was taken with SECRET_KEY_FALLBACKS set: set them again (printed by '
                '`manage.py backup secrets SNAPSHOT`) for what was encrypted with those keys')
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    records.refresh()
    rows = sum(held['database']['tables'].values())
    say(f'backup: restored snapshot {short} of {held["created_at"][:19]} ({held["kind"]}) in '
        f'{format_duration(time.monotonic() - started)}: {len(held["database"]["tables"])} tables ({rows} rows), '
        f'{restored_files} data product file(s)')
    return held


def _compare_files(expected, folder, short):
    """Every restored file is the size and checksum the manifest recorded, before any is used
    (hashed on several threads: hashlib lets go of the GIL)."""
    def differs(name):
        size, digest = expected[name]
        path = folder / name if folder else None
        if path is None or not path.is_file():
            return f'the data product {name} is missing from it'
        if path.stat().st_size != size or manifest.sha256(path) != digest:
            return f'the data product {name} differs from its checksum'
        return ''
    with ThreadPoolExecutor(max_workers=4) as pool:
        for problem in pool.map(differs, sorted(expected)):
            if problem:
                raise BackupError(f'snapshot {short} is damaged: {problem}')


def _settle_the_run_that_took_it(held, short):
    """The scheduled backup that took the snapshot is recorded in it as running: it got that far,
    so it is recorded succeeded, not taken for a lost run (a failing backup job) once restored.
    Other runs under way then are left to the lost-runner rule."""
    from datetime import datetime

    from myapp.models import JobRun

    JobRun.objects.filter(outcome=JobRun.Outcome.RUNNING, command__startswith='backup create').update(
        outcome=JobRun.Outcome.SUCCEEDED, exit_status=0, finished_at=datetime.fromisoformat(held['created_at']),
        summary=f'backup: snapshot {short} taken (recorded as succeeded by the restore of it)')


def _migrate_if_behind(say):
    """A snapshot of an older version of the TOM is brought up to this code's schema."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        say(f'backup: the snapshot is {len(plan)} migration(s) behind this code: applying them')
        call_command('migrate', '--no-input', verbosity=0)


def _put_files(folder, expected):
    """Makes MEDIA_ROOT hold exactly the snapshot's files: each moved into place whole."""
    if settings.AWS_STORAGE_BUCKET_NAME:
        return 0
    root = Path(settings.MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    for name in expected:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder / name, target)
    for path in sorted(root.rglob('*'), reverse=True):
        name = path.relative_to(root).as_posix()
        if path.is_file() and name not in expected:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return len(expected)


def read_secrets(snapshot):
    """The secret key and fallbacks a snapshot holds."""
    with tempfile.TemporaryFile() as out:
        restic.run('dump', snapshot['id'], f'{stage_path(snapshot)}/{create.SECRETS}', stdout=out)
        out.seek(0)
        return json.loads(out.read())
