"""`backup verify`: proof that the latest snapshot restores. restic re-reads every pack of the
repository and checks it against its checksums; then the latest snapshot's database is loaded
into a scratch database (a throwaway one on the same PostgreSQL server, or a temporary SQLite
file) and its row counts, and a sample of its files' checksums, compared with its manifest."""
import random
import shutil
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from myapp.backups import database, manifest, records, restic, restore
from myapp.backups.restic import BackupError
from myapp.failures import one_line
from myapp.models import BackupSnapshot
from myapp.timing import format_duration

SAMPLE = 20  # files whose content is read back and checked, picked at random each time


def verify(say=print, sample=SAMPLE):
    started = time.monotonic()
    check = restic.run('check', '--read-data', check=False)
    if check.returncode != 0:
        raise BackupError(f'backup repository {restic.repository_name()} is damaged: {_damage(check)}')
    snapshot = restic.find('latest', records.refresh())
    short = snapshot['short_id']
    problems = []
    try:
        held = restore.read_manifest(snapshot)
        problems += _compare_database(snapshot, held)
        problems += _compare_files(snapshot, held, sample)
    except BackupError as error:
        problems.append(str(error))
    detail = '; '.join(problems) or (f'{len(held["database"]["tables"])} tables and '
                                     f'{min(sample, len(held["media"]["files"]))} file(s) as recorded')
    BackupSnapshot.objects.filter(snapshot_id=snapshot['id']).update(
        verified_at=timezone.now(), verified_ok=not problems, verify_detail=detail[:2000])
    if problems:
        raise BackupError(f'snapshot {short} does not restore as recorded: {detail}')
    say(f'backup: verified the repository and snapshot {short} in {format_duration(time.monotonic() - started)}: '
        f'{detail}')


def _damage(check):
    """The lines of `restic check` that say what is wrong, folded into one."""
    text = f'{check.stdout}\n{check.stderr}'
    lines = [one_line(line) for line in text.splitlines()
             if any(word in line.lower() for word in ('error', 'pack', 'damaged', 'does not match', 'missing'))
             and 'check snapshots' not in line.lower()]
    last = text.strip().splitlines()[-1] if text.strip() else 'restic check failed'
    return '; '.join(lines[:3])[:600] or one_line(last)


def _compare_database(snapshot, held):
    workspace = Path(tempfile.mkdtemp(prefix='backup-verify-', dir=settings.DATA_DIR))
    try:
        stage = restore.stage_path(snapshot)
        name = database.dump_name(held['database']['vendor'])
        restic.run('restore', snapshot['id'], '--target', str(workspace), '--include', f'{stage}/{name}')
        dump_file = workspace / stage.lstrip('/') / name
        if not dump_file.is_file():
            return [f'its database copy {name} is missing']
        with database.scratch(dump_file) as counts:
            return manifest.differences(held['database']['tables'], counts)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _compare_files(snapshot, held, sample):
    files = held['media']['files']
    root = held['media'].get('root')
    problems = []
    for name in random.sample(sorted(files), min(sample, len(files))):
        size, digest = files[name]
        with tempfile.TemporaryFile() as out:
            done = restic.run('dump', snapshot['id'], f'{root}/{name}', stdout=out, check=False)
            out.seek(0)
            if done.returncode != 0:
                problems.append(f'{name}: cannot be read back ({one_line(done.stderr.decode(errors="replace"))[:200]})')
            elif manifest.sha256(out) != digest:
                problems.append(f'{name}: its checksum differs from the one recorded')
    return problems
