"""What a sync run tells the log: a line per failed record, progress now and then, a summary.

Lines at default verbosity go to stdout (`-v 0` keeps only errors); failures go to stderr,
one line each naming the observation, its record and target, and why.
"""
import time
from dataclasses import dataclass, field

from django.conf import settings

from myapp.data_sync.failures import describe


@dataclass
class RecordOutcome:
    """What happened to one record in this run."""

    record: object
    listed: int = 0                 # products the archive listed
    products: list = field(default_factory=list)  # the new products fetched for it
    error: str | None = None        # why it failed, in one line; None when it did not

    def fail(self, error):
        """Keeps the first reason: later ones are consequences of it or less telling."""
        if self.error is None:
            self.error = error if isinstance(error, str) else describe(error, settings.TOM_HTTP_TIMEOUT)


class Report:
    def __init__(self, stdout, stderr, verbosity=1, progress_interval=10.0, dry_run=False):
        self.stdout, self.stderr = stdout, stderr
        self.verbosity = verbosity
        self.progress_interval = progress_interval
        self.dry_run = dry_run
        self.total = self.settled = 0
        self.checked = self.products = self.bytes = self.failures = 0
        self.started = self.last_progress = time.monotonic()

    def info(self, line):
        if self.verbosity >= 1:
            self.stdout.write(line)

    def unknown_facility(self, name, count):
        self.stderr.write(f'skipped {count} record(s) of facility {name!r}: '
                          'not in TOM_FACILITY_CLASSES, or it has no data to download')

    def removed_partials(self, count):
        if count:
            self.info(f'removed {count} partial download(s) left by an interrupted run')

    def stored(self, item):
        """A product stored (or, in a dry run, that would be)."""
        self.products += 1
        self.bytes += item.size
        observation = item.record.observation_id
        if self.dry_run:
            self.info(f'would download {item.product.filename} (product {item.product.product_id}) '
                      f'of observation {observation}')
        elif self.verbosity >= 2:
            self.info(f'saved {item.product.filename} ({_size(item.size)}) of observation {observation}')

    def record_done(self, outcome):
        self.checked += 1
        if outcome.error is not None:
            self.failures += 1
            record = outcome.record
            self.stderr.write(f'FAILED observation {record.observation_id} ({record.facility}, '
                              f'record {record.pk}, target {record.target}): {outcome.error}')
        if self._progress_due():
            self.info(f'progress: {self}')

    def summary(self):
        verb = 'would download' if self.dry_run else 'downloaded'
        settled = f'; {self.settled} settled record(s) not listed' if self.settled else ''
        self.info(f'done: {self.checked} record(s) checked, {verb} {self.products} product(s) '
                  f'({self.bytes} bytes), {self.failures} failure(s), {self.seconds():.1f} s{settled}')

    def seconds(self):
        return time.monotonic() - self.started

    def _progress_due(self):
        now = time.monotonic()
        if now - self.last_progress < self.progress_interval or self.checked == self.total:
            return False
        self.last_progress = now
        return True

    def __str__(self):
        return (f'{self.checked}/{self.total} records, {self.products} product(s), {_size(self.bytes)}, '
                f'{self.failures} failure(s), {self.seconds():.0f} s')


def _size(n):
    for unit in ('bytes', 'KB', 'MB', 'GB'):
        if n < 1000 or unit == 'GB':
            return f'{n} bytes' if unit == 'bytes' else f'{n:.1f} {unit}'
        n /= 1000
