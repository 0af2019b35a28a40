"""`manage.py run_cadence_strategies`: TOM Toolkit's `runcadencestrategies`, with its
failures made visible.

The upstream command runs the strategy of each active dynamic cadence, logs the ones that
fail and exits 0. This runs the same strategies, names each failing cadence on stderr and
exits 1, so that the job history and cron's log show the job as failed."""
import time

from django.core.management.base import BaseCommand, CommandError
from tom_observations.cadence import get_cadence_strategy
from tom_observations.models import DynamicCadence

from myapp.failures import one_line


class Command(BaseCommand):
    help = 'Runs the strategy of every active dynamic cadence; exits 1 naming each that failed.'
    requires_system_checks = []

    def handle(self, *args, **options):
        started = time.monotonic()
        cadences = DynamicCadence.objects.filter(active=True).select_related('observation_group').order_by('pk')
        failures = submitted = 0
        for cadence in cadences:
            label = f'cadence {cadence.pk} ({cadence.cadence_strategy!r}, group {cadence.observation_group})'
            try:
                new = get_cadence_strategy(cadence.cadence_strategy)(cadence).run() or []
            except Exception as error:
                failures += 1
                self.stderr.write(f'FAILED {label}: {one_line(f"{type(error).__name__}: {error}")}')
                continue
            submitted += len(new)
            if new and options['verbosity'] >= 1:
                self.stdout.write(f'{label}: submitted {len(new)} observation(s)')
        if options['verbosity'] >= 1:
            self.stdout.write(f'done: {len(cadences)} cadence(s), {submitted} observation(s) submitted, '
                              f'{failures} failure(s), {time.monotonic() - started:.1f} s')
        if failures:
            raise CommandError(f'{failures} cadence(s) failed; see the lines above', returncode=1)
