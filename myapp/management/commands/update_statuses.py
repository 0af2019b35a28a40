"""`manage.py update_statuses`: TOM Toolkit's `updatestatus`, with its failures made visible.

The upstream command refreshes the state of every unfinished observation from its facility
but exits 0 whatever failed. This one runs the same facility code and then names each
failed observation on stderr and exits 1, so that cron's log shows the job as failed.
"""
import time

from django.core.management.base import BaseCommand, CommandError
from tom_observations.facility import get_service_classes

from myapp.failures import one_line
from myapp.targets import target_option


class Command(BaseCommand):
    help = 'Refreshes the status of unfinished observations; exits 1 if any could not be refreshed.'
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument('--target_id', help='only the observations of this target (its numeric id)')

    def handle(self, *args, **options):
        target = target_option(options['target_id'])
        started = time.monotonic()
        failures = 0
        for name, facility_class in get_service_classes().items():
            facility = facility_class()
            if not hasattr(facility, 'update_all_observation_statuses'):
                continue  # manual facilities have no status to ask for
            try:
                failed = facility.update_all_observation_statuses(target=target)
            except Exception as error:
                failed = [('(all)', f'{type(error).__name__}: {error}')]
            for observation_id, reason in failed:
                self.stderr.write(f'FAILED observation {observation_id} ({name}): {one_line(reason)}')
            failures += len(failed)
        if options['verbosity'] >= 1:
            self.stdout.write(f'done: {failures} failure(s), {time.monotonic() - started:.1f} s')
        if failures:
            raise CommandError(f'{failures} observation(s) could not be refreshed; see the lines above',
                               returncode=1)
