"""What the Jobs page, /metrics and `jobs check` show of the backups, read from the database
only (no restic process): the newest snapshot, how many there are, the last verify, whether
the newest is older than BACKUP_MAX_AGE, and the warning while no passphrase is set."""
from dataclasses import dataclass

from django.conf import settings

from myapp.backups import restic
from myapp.models import BackupSnapshot
from myapp.timing import format_duration, format_local


@dataclass
class BackupState:
    newest: object        # BackupSnapshot, or None
    count: int
    verified: object      # the BackupSnapshot verified last, or None
    scheduled: bool       # the running crontab has a `backup create` job
    since: object         # what its age counts from: the newest snapshot, or when the job was first seen
    now: object
    warning: str          # '' once BACKUP_PASSPHRASE is set

    @property
    def repository(self):
        return restic.repository_name()

    @property
    def age(self):
        return (self.now - self.since).total_seconds() if self.since else None

    @property
    def too_old(self):
        return self.scheduled and self.age is not None and self.age > settings.BACKUP_MAX_AGE

    def overdue_line(self):
        newest = (f'the newest snapshot, {self.newest.snapshot_id[:8]}, was taken {format_local(self.newest.taken_at)}'
                  if self.newest else f'no snapshot since the backup job was scheduled at {format_local(self.since)}')
        return (f'OVERDUE backup: {newest}, {format_duration(self.age)} ago '
                f'(BACKUP_MAX_AGE {format_duration(settings.BACKUP_MAX_AGE)})')

    def as_dict(self):
        def snapshot(item):
            return None if item is None else {
                'id': item.snapshot_id, 'taken_at': item.taken_at.isoformat(), 'kind': item.kind, 'size': item.size,
                'files': item.files, 'rows': item.rows,
                'verified_at': item.verified_at and item.verified_at.isoformat(),
                'verified_ok': item.verified_ok, 'verify_detail': item.verify_detail}
        return {'repository': self.repository, 'snapshots': self.count, 'newest': snapshot(self.newest),
                'last_verified': snapshot(self.verified), 'too_old': self.too_old, 'age_seconds': self.age,
                'max_age_seconds': settings.BACKUP_MAX_AGE, 'warning': self.warning or None}


def backup_job(lines):
    """The crontab line that runs `backup create`, or None."""
    for line in lines:
        if tuple(line.spec.argv[:2]) == ('backup', 'create'):
            return line
    return None


def state(now, lines=(), first_seen=None):
    """lines: the running crontab's job lines; first_seen: {job: when a loaded crontab first had it}."""
    snapshots = BackupSnapshot.objects.all()
    newest = snapshots.first()
    job = backup_job(lines)
    since = newest.taken_at if newest else (first_seen or {}).get(job.name) if job else None
    verified = snapshots.exclude(verified_at=None).order_by('-verified_at').first()
    # Said wherever backups are in use: scheduled, or taken (before an upgrade, say).
    warning = restic.unconfigured_warning() if job or newest else ''
    return BackupState(newest, snapshots.count(), verified, job is not None, since, now, warning)
