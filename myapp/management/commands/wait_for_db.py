"""`manage.py wait_for_db`: wait, for a bounded time, until the database accepts connections.
The containers' entrypoint runs it, so that a TOM starting beside its database waits for it
instead of crashing, and one whose database never comes says so and exits 1."""
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection

from myapp.failures import one_line


class Command(BaseCommand):
    help = 'Waits until the database accepts connections.'
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument('--timeout', type=float, default=60, help='seconds to wait at most (default 60)')

    def handle(self, *args, **options):
        deadline = time.monotonic() + options['timeout']
        while True:
            try:
                connection.ensure_connection()
                return
            except OperationalError as error:
                reason = one_line(error)
                if time.monotonic() >= deadline:
                    raise CommandError(f'database not reachable after {options["timeout"]:g} s: {reason}')
                if options['verbosity'] >= 1:
                    self.stderr.write(f'waiting for the database: {reason}')
                connection.close()
                time.sleep(1)
