"""`manage.py save_data`: download the data of every finished observation, run by cron hourly.

Unlike the recipe in TOM Toolkit's "Automating tasks" guide, which this replaces: it handles
the default LCORedirect facility, picks finished records in the database, bounds every HTTP
request, keeps going past a failing record, never leaves a product row without its complete
file, and tells the scheduler (exit status 1) and the reader (one line each) what failed.
"""
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from filelock import FileLock, Timeout

from myapp.facility_products import data_facilities, list_products
from myapp.failures import describe
from myapp.http import bounded_session
from myapp.observation_records import finished_records, records_of_unknown_facilities
from myapp.product_store import ProductStore
from myapp.targets import target_option


class Command(BaseCommand):
    help = 'Downloads the data products of every observation in a terminal state.'
    # A cron job should start fast; the web container runs the system checks.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument('--target_id', help='only the observations of this target (its numeric id)')
        parser.add_argument('--dry-run', action='store_true',
                            help='list what would be downloaded; download and change nothing')
        parser.add_argument('--progress-interval', type=float, default=10.0, metavar='SECONDS',
                            help='seconds between progress lines at default verbosity (default 10)')

    def handle(self, *args, **options):
        self.verbosity = options['verbosity']
        self.dry_run = options['dry_run']
        self.progress_interval = options['progress_interval']
        target = target_option(options['target_id'])
        (settings.DATA_DIR / 'locks').mkdir(parents=True, exist_ok=True)
        lock = FileLock(settings.DATA_DIR / 'locks' / 'save_data.lock', timeout=0)
        try:
            lock.acquire()
        except Timeout:
            # Not a failure: the run holding the lock is doing this run's work.
            self.info(f'another save_data run holds {lock.lock_file}; nothing to do')
            return
        try:
            failures = self.save_all(target)
        finally:
            lock.release()
        if failures:
            raise CommandError(f'{failures} observation record(s) failed; see the lines above', returncode=1)

    def save_all(self, target):
        session = bounded_session()
        store = ProductStore(session, settings.DATA_DIR / 'incoming')
        if not self.dry_run:
            removed = store.remove_partial_downloads()
            if removed:
                self.info(f'removed {removed} partial download(s) left by an interrupted run')
        facilities = data_facilities()
        for name, count in records_of_unknown_facilities(facilities, target).items():
            self.stderr.write(f'skipped {count} record(s) of facility {name!r}: '
                              'not in TOM_FACILITY_CLASSES, or it has no data to download')
        records = finished_records(facilities, target)
        tally = Tally(total=len(records))
        for facility, record in records:
            try:
                self.save_record(facility, record, session, store, tally)
            except Exception as error:
                tally.failures += 1
                self.stderr.write(f'FAILED observation {record.observation_id} ({record.facility}, '
                                  f'record {record.pk}, target {record.target}): '
                                  f'{describe(error, settings.TOM_HTTP_TIMEOUT)}')
            tally.checked += 1
            if tally.progress_due(self.progress_interval):
                self.info(f'progress: {tally}')
        verb = 'would download' if self.dry_run else 'downloaded'
        self.info(f'done: {tally.checked} record(s) checked, {verb} {tally.products} product(s) '
                  f'({tally.bytes} bytes), {tally.failures} failure(s), {tally.seconds():.1f} s')
        return tally.failures

    def save_record(self, facility, record, session, store, tally):
        products = list_products(facility, record.observation_id, session)
        stored = store.stored_ids([p.product_id for p in products])
        for product in products:
            if product.product_id in stored:
                continue
            if self.dry_run:
                self.info(f'would download {product.filename} (product {product.product_id}) '
                          f'of observation {record.observation_id}')
            else:
                size = store.download(record, product)
                tally.bytes += size
                if self.verbosity >= 2:
                    self.info(f'saved {product.filename} ({_size(size)}) of observation {record.observation_id}')
            tally.products += 1

    def info(self, line):
        """A line for the log at default verbosity; `-v 0` keeps only errors."""
        if self.verbosity >= 1:
            self.stdout.write(line)


class Tally:
    """What a run has done so far, for its progress and summary lines."""

    def __init__(self, total):
        self.total = total
        self.checked = self.products = self.bytes = self.failures = 0
        self.started = self.last_progress = time.monotonic()

    def seconds(self):
        return time.monotonic() - self.started

    def progress_due(self, interval):
        now = time.monotonic()
        if now - self.last_progress < interval or self.checked == self.total:
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
