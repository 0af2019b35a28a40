"""`manage.py run_saved_queries`: every saved query of the TOM, run by cron.

TOM Toolkit's `rundataquery` and `runbrokerquery` run one query each and exit 0 whatever
failed. This runs them all, names each that failed on stderr, and exits 1 if any did."""
import time

from django.core.management.base import BaseCommand, CommandError

from myapp.saved_queries import QueryFailed, saved_queries


class Command(BaseCommand):
    help = 'Runs every saved data service and broker query; exits 1 naming each that failed.'
    requires_system_checks = []

    def handle(self, *args, **options):
        started = time.monotonic()
        queries = saved_queries()
        failures = targets = 0
        for label, query, run in queries:
            try:
                found = run(query)
            except QueryFailed as error:
                failures += 1
                self.stderr.write(f'FAILED {label}: {error}')
                continue
            targets += len(found)
            if options['verbosity'] >= 1:
                self.stdout.write(f'{label}: {len(found)} target(s)')
        if options['verbosity'] >= 1:
            self.stdout.write(f'done: {len(queries)} saved {_queries(len(queries))}, {targets} target(s), '
                              f'{failures} failure(s), {time.monotonic() - started:.1f} s')
        if failures:
            raise CommandError(f'{failures} saved {_queries(failures)} failed; see the lines above', returncode=1)


def _queries(count):
    return 'query' if count == 1 else 'queries'
