"""restic, the program that keeps the snapshots: encrypted (AES-256, Poly1305), deduplicated
(content-defined chunks), in a folder or an S3-compatible bucket. Each call is one restic
process with the repository and passphrase in its environment (never on its command line);
a failure is a BackupError whose one line says what is wrong, not restic's usage text."""
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings

from myapp.failures import one_line

# restic's exit statuses (0.17 and later).
NO_REPOSITORY, LOCKED, WRONG_PASSWORD = 10, 11, 12
HOST = 'tom'  # one host name for every container, so that each backup finds its parent snapshot


class BackupError(Exception):
    """What went wrong, in one line for a person."""


def passphrase():
    """BACKUP_PASSPHRASE; unset, a passphrase generated beside the secret key, made on first
    use: backups run, but only this machine can read them."""
    if settings.BACKUP_PASSPHRASE:
        return settings.BACKUP_PASSPHRASE
    path = Path(settings.BACKUP_GENERATED_PASSPHRASE_FILE)
    try:
        if not path.exists():
            new = path.with_name(f'.{path.name}.new')
            new.write_text(secrets.token_urlsafe(32) + '\n')
            new.chmod(0o600)
            os.replace(new, path)
        return path.read_text().strip()
    except OSError as error:
        raise BackupError(f'no BACKUP_PASSPHRASE is set, and the generated one {path} cannot be kept: '
                          f'{error.strerror}')


def unconfigured_warning():
    """The line that says backups cannot be read off this machine, or '' once a passphrase is set."""
    if settings.BACKUP_PASSPHRASE or settings.BACKUP_PASSPHRASE_CONFIGURED:
        return ''
    return (f'backups are encrypted with a passphrase generated in {settings.BACKUP_GENERATED_PASSPHRASE_FILE}, '
            'on this machine only: they cannot be restored once it is lost. Set BACKUP_PASSPHRASE (or '
            'BACKUP_PASSPHRASE_FILE) to a passphrase you keep elsewhere, or copy that file somewhere safe')


def repository_name():
    """The repository without credentials, for lines and pages."""
    return settings.BACKUP_REPOSITORY.split('@')[-1] if '://' in settings.BACKUP_REPOSITORY else \
        settings.BACKUP_REPOSITORY


def binary():
    found = shutil.which('restic')
    if not found:
        raise BackupError('restic is not installed (the image has it; elsewhere: apt-get install restic, or '
                          '`make test` builds it into .venv/bin)')
    return found


def environment():
    env = {**os.environ, 'RESTIC_REPOSITORY': settings.BACKUP_REPOSITORY, 'RESTIC_PASSWORD': passphrase(),
           'RESTIC_PROGRESS_FPS': '0.0166'}
    # Go's heap kept small (a soft limit: restic may pass it, and then collects more often), so
    # that a backup of gigabytes of frames fits beside the TOM's own processes in the cron
    # container: 95 MB instead of 135 MB for 2 GB of frames, for about a third more time.
    env.setdefault('GOMEMLIMIT', '64MiB')
    if 'RESTIC_CACHE_DIR' not in env and not os.access(Path.home(), os.W_OK):
        # A read-only home (Kubernetes pods): the cache, which spares reading the repository's
        # index at each backup, goes to the temporary folder.
        env['RESTIC_CACHE_DIR'] = str(Path(tempfile.gettempdir()) / 'restic-cache')
    env.pop('RESTIC_PASSWORD_FILE', None)
    env.pop('RESTIC_PASSWORD_COMMAND', None)
    # The data bucket's secret may come from a file (AWS_SECRET_ACCESS_KEY_FILE), as the settings read it.
    secret = settings.STORAGES['default'].get('OPTIONS', {}).get('secret_key')
    if secret and not env.get('AWS_SECRET_ACCESS_KEY'):
        env['AWS_SECRET_ACCESS_KEY'] = secret
    return env


_reached = set()


def check_reachable():
    """A bucket's server answers at all, asked once per process with a short timeout: restic
    itself retries an unreachable server for many minutes before it gives up."""
    repository = settings.BACKUP_REPOSITORY
    if not repository.startswith(('s3:', 'rest:')) or repository in _reached:
        return
    address = repository.split(':', 1)[1]
    if '://' not in address:
        address = 'https://' + address
    endpoint = '{0.scheme}://{0.netloc}/'.format(urlsplit(address))
    try:
        requests.head(endpoint, timeout=10)
    except requests.RequestException as error:
        raise BackupError(f'backup repository {repository_name()} cannot be reached (BACKUP_REPOSITORY): '
                          f'{one_line(error)[:300]}')
    _reached.add(repository)


def run(*args, json_output=False, stdout=None, check=True):
    """Runs `restic ARGS` and returns its CompletedProcess (stdout parsed from JSON with
    json_output). stdout: a file to write restic's output to instead (e.g. `dump`)."""
    check_reachable()
    command = [binary(), '--no-lock' if args[0] in ('dump', 'cat', 'ls') else None, *args]
    command = [part for part in command if part is not None]
    if json_output:
        command.insert(1, '--json')
    done = subprocess.run(command, env=environment(), stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE, text=stdout is None)
    if check and done.returncode != 0:
        raise BackupError(explain(done.returncode, done.stderr if isinstance(done.stderr, str)
                                  else done.stderr.decode(errors='replace')))
    if json_output and done.returncode == 0:
        done.parsed = _json(done.stdout)
    return done


def explain(status, stderr):
    """restic's failure as one line naming the repository."""
    where = f'backup repository {repository_name()}'
    if status == WRONG_PASSWORD:
        hint = 'BACKUP_PASSPHRASE' if settings.BACKUP_PASSPHRASE else \
            f'the generated passphrase {settings.BACKUP_GENERATED_PASSPHRASE_FILE}; set BACKUP_PASSPHRASE'
        return f'{where}: wrong passphrase: the repository cannot be opened with {hint}'
    if status == NO_REPOSITORY:
        return f'{where} does not exist or cannot be reached (BACKUP_REPOSITORY): {_last_line(stderr)}'
    if status == LOCKED:
        return f'{where} is locked by another backup: {_last_line(stderr)}'
    return f'{where}: restic failed (exit status {status}): {_last_line(stderr)}'


def _last_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith('  ')]
    return one_line(lines[-1] if lines else 'no message')[:500]


def _json(text):
    """restic's JSON: one document, or one per line (the last one the answer)."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.startswith('{')]


def create_repository():
    """Makes the repository, on the first backup."""
    if '://' not in settings.BACKUP_REPOSITORY and not settings.BACKUP_REPOSITORY.startswith(('s3:', 'sftp:', 'rest:')):
        try:
            Path(settings.BACKUP_REPOSITORY).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BackupError(f'backup repository {settings.BACKUP_REPOSITORY} cannot be created: {error.strerror}')
    run('init')


def snapshots():
    """Every snapshot of the TOM's, oldest first (restic's JSON objects)."""
    return run('snapshots', '--host', HOST, json_output=True).parsed or []


def find(snapshot, found=None):
    """The snapshot named (an id, a prefix of one, or `latest`), or a BackupError naming it;
    found: the snapshots already listed (each listing is a restic start, ~0.5 s)."""
    found = snapshots() if found is None else found
    if not found:
        raise BackupError(f'backup repository {repository_name()} has no snapshot yet')
    if snapshot == 'latest':
        return found[-1]
    matches = [item for item in found if item['id'].startswith(snapshot) and len(snapshot) >= 4]
    if len(matches) != 1:
        raise BackupError(f'no snapshot {snapshot!r} in backup repository {repository_name()} '
                          f'(see `manage.py backup list`)' if not matches else
                          f'{snapshot!r} names {len(matches)} snapshots: give more of its id')
    return matches[0]
