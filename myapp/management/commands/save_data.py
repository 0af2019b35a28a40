"""`manage.py save_data`: download the data of finished observations, run by cron hourly.

The command-line front of the sync engine (myapp/data_sync): its arguments, the lock that
keeps one run at a time, and the exit status. Unlike the recipe in TOM Toolkit's "Automating
tasks" guide, which this replaces, it handles the default LCORedirect facility, works
concurrently, lists only what may have changed, runs the Save button's hooks, never leaves a
product row without its complete file, and tells the scheduler (exit status 1) and the
reader (one line each) what failed.
"""
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from myapp.data_sync.engine import Sync
from myapp.data_sync.report import Report
from myapp.data_sync.store import DryRunStore, ProductStore
from myapp.failures import one_line
from myapp.jobs.locks import job_lock
from myapp.targets import target_option

# One sync at a time, however it was started: by hand, or through `jobs run` under any job
# name, which takes this lock for its run instead of one named after the job.
LOCK_NAME = 'save_data'


class Command(BaseCommand):
    help = ('Downloads the new data products of observations in a terminal state: those that ended '
            'within SAVE_DATA_SETTLE_HOURS, failed last time, or were never listed.')
    # A cron job should start fast; the web container runs the system checks.
    requires_system_checks = []
    job_lock = LOCK_NAME

    def add_arguments(self, parser):
        parser.add_argument('--target_id', help='only the observations of this target (its numeric id)')
        parser.add_argument('--all', action='store_true', dest='everything',
                            help='list every finished observation, settled or not (after an archive '
                                 'reprocessed old data, say)')
        parser.add_argument('--dry-run', action='store_true',
                            help='list what would be downloaded; download and change nothing')
        parser.add_argument('--progress-interval', type=float, default=10.0, metavar='SECONDS',
                            help='seconds between progress lines at default verbosity (default 10)')

    def handle(self, *args, **options):
        if options['verbosity'] == 0:
            # Quiet means errors only, INFO lines of TOM Toolkit's hooks included.
            logging.disable(logging.INFO)
        target = target_option(options['target_id'])
        dry_run = options['dry_run']
        store = (DryRunStore if dry_run else ProductStore)(settings.DATA_DIR / 'incoming')
        report = Report(self.stdout, self.stderr, options['verbosity'], options['progress_interval'], dry_run)
        sync = Sync(store, report, target=target, everything=options['everything'])
        lock = job_lock(LOCK_NAME)
        if not lock.acquire():
            # Not a failure: the run holding the lock is doing this run's work.
            report.info(f'another save_data run holds the {lock}; nothing to do')
            return
        try:
            failures = sync.run()
        except DatabaseError as error:
            raise CommandError(f'database error: {one_line(error)}')
        finally:
            lock.release()
        if failures:
            raise CommandError(f'{failures} observation record(s) failed; see the lines above', returncode=1)
