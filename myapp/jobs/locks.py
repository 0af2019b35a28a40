"""One run of a job at a time, across processes, cron replicas and hosts.

On PostgreSQL a session-level advisory lock, held by the runner's database connection: any
process on any host sharing the database sees it, and the server releases it when the
runner's connection ends, however the runner ended. On SQLite (one host by nature) a file
lock under DATA_DIR/locks/jobs, which the kernel releases when the runner's process ends.
"""
import hashlib
import zlib

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils.text import slugify
from filelock import FileLock, Timeout

# The first key of our advisory locks: keeps them apart from any other application's.
ADVISORY_NAMESPACE = zlib.crc32(b'mytom jobs') & 0x7FFFFFFF


def job_lock(name):
    if connection.vendor == 'postgresql':
        return AdvisoryLock(name)
    return JobFileLock(name)


class AdvisoryLock:
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
