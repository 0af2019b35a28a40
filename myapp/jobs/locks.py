"""One run of a job at a time, across processes, cron replicas and hosts.

On PostgreSQL a session-level advisory lock, held by the runner's database connection: any
process on any host sharing the database sees it, and the server releases it when the
runner's connection ends, however the runner ended (and when that connection is lost: the
runner then takes it again or stops its job, see runner.py). On SQLite (one host by nature)
a file lock under DATA_DIR/locks/jobs, which the kernel releases when the runner's process
ends.

A job's lock is named after the job, unless its command names one it shares with every
other run of it (`Command.job_lock`, as save_data does): then `jobs run save_data` and a
save_data started by hand keep apart, and the run under `jobs run` takes one lock only.
"""
import hashlib
import zlib

from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.db import DatabaseError, connection
from django.utils.text import slugify
from filelock import FileLock, Timeout

# The first key of our advisory locks: keeps them apart from any other application's.
ADVISORY_NAMESPACE = zlib.crc32(b'mytom jobs') & 0x7FFFFFFF


# The locks the runner that forked this process holds for it (see child.py).
_held_by_runner = set()


def job_lock(name):
    if name in _held_by_runner:
        return HeldByRunner(name)
    if connection.vendor == 'postgresql':
        return AdvisoryLock(name)
    return JobFileLock(name)


def lock_name(spec):
    """The lock a run of the job spec takes: the one its command shares, else the job's."""
    command = load_command_class(get_commands()[spec.command], spec.command)
    return getattr(command, 'job_lock', None) or spec.name


def held_by_runner(name):
    """Called in the job's process: the runner that forked it holds the lock name."""
    _held_by_runner.add(name)


class HeldByRunner:
    """A lock the job's runner holds for it: taken and released by the runner alone."""

    held_by_connection = False

    def __init__(self, name):
        self.name = name

    def acquire(self):
        return True

    def release(self):
        pass

    def __str__(self):
        return f'lock {self.name!r}, held by this job\'s runner'


class AdvisoryLock:
    # The server drops it with the connection that took it: the runner watches for that.
    held_by_connection = True

    def __init__(self, name):
        digest = hashlib.sha256(name.encode()).digest()
        self.key = int.from_bytes(digest[:4], 'big', signed=True)
        self.held = False

    def acquire(self):
        """True when this process now holds the lock; False at once when another does."""
        with connection.cursor() as cursor:
            cursor.execute('SELECT pg_try_advisory_lock(%s, %s)', [ADVISORY_NAMESPACE, self.key])
            self.held = cursor.fetchone()[0]
        return self.held

    def lost(self):
        """Its connection was lost, and the lock with it."""
        self.held = False

    def release(self):
        if not self.held:
            return
        self.held = False
        try:
            with connection.cursor() as cursor:
                cursor.execute('SELECT pg_advisory_unlock(%s, %s)', [ADVISORY_NAMESPACE, self.key])
        except DatabaseError:
            pass  # the connection is gone, and the lock with it

    def __str__(self):
        return f'PostgreSQL advisory lock ({ADVISORY_NAMESPACE}, {self.key})'


class JobFileLock:
    held_by_connection = False

    def __init__(self, name):
        directory = settings.DATA_DIR / 'locks' / 'jobs'
        directory.mkdir(parents=True, exist_ok=True)
        # Readable, and distinct for names that slugify alike.
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        self.path = directory / f'{slugify(name)[:80]}-{digest}.lock'
        self.lock = FileLock(self.path, timeout=0)

    def acquire(self):
        try:
            self.lock.acquire()
        except Timeout:
            return False
        return True

    def release(self):
        if self.lock.is_locked:
            self.lock.release()

    def __str__(self):
        return f'file lock {self.path}'
