"""`manage.py prune_job_history`: deletes job runs older than JOB_HISTORY_DAYS, daily, and the
alert streams' hourly counts and retried dead letters as old (their totals are kept)."""
from django.conf import settings
from django.core.management.base import BaseCommand

from myapp.jobs import history
from myapp.streams import state as stream_state


class Command(BaseCommand):
    help = 'Deletes finished job runs older than JOB_HISTORY_DAYS (default 90) from the job history.'
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument('--days', type=int, default=None,
                            help='keep this many days instead of JOB_HISTORY_DAYS')

    def handle(self, *args, **options):
        days = settings.JOB_HISTORY_DAYS if options['days'] is None else options['days']
        deleted = history.prune(days)
        hours, letters = stream_state.prune(days)
        if options['verbosity'] >= 1:
            self.stdout.write(f'done: deleted {deleted} job run(s), {hours} hourly stream count(s) and {letters} '
                              f'retried dead letter(s) older than {days} day(s)')
