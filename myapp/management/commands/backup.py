"""`manage.py backup`: the TOM's backups (myapp/backups).

  backup create [--kind K]       take a snapshot: database, data products, secret key, manifest
  backup list                    the snapshots: time, kind, size, files, rows
  backup restore SNAPSHOT|latest [--force]   bring the TOM back as it was at the snapshot
  backup verify                  check the repository and restore the latest snapshot into scratch
  backup before-migrate          (the web container's start) a pre-upgrade snapshot if migrations are due
  backup secrets SNAPSHOT        print the secret key (and fallbacks) a snapshot holds
"""
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from myapp.backups import create, records, restic, restore, verify
from myapp.backups.restic import BackupError
from myapp.models import BackupSnapshot
from myapp.timing import format_local


class Command(BaseCommand):
    help = "Backs up the TOM (database, data products, secret key) to BACKUP_REPOSITORY, and restores it."
    requires_system_checks = []

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest='subcommand', required=True, metavar='SUBCOMMAND')
        make = commands.add_parser('create', help='take a snapshot and prune old ones by BACKUP_KEEP')
        make.add_argument('--kind', default=BackupSnapshot.Kind.MANUAL,
                          choices=[BackupSnapshot.Kind.SCHEDULED, BackupSnapshot.Kind.MANUAL],
                          help='what it is recorded as (the crontab says scheduled)')
        commands.add_parser('list', help='the snapshots in the repository')
        back = commands.add_parser('restore', help='bring the TOM back as it was at a snapshot',
                                   description='Restores the database, the data product files and the secret key of '
                                               'SNAPSHOT (an id, or latest). Refuses a TOM whose database holds '
                                               'data unless --force.')
        back.add_argument('snapshot', metavar='SNAPSHOT|latest')
        back.add_argument('--force', action='store_true',
                          help='restore over a TOM that holds data (a snapshot of it is taken first)')
        commands.add_parser('verify', help='check the repository, and that the latest snapshot restores as recorded')
        commands.add_parser('before-migrate', help='a pre-upgrade snapshot, when migrations are about to be applied')
        secrets = commands.add_parser('secrets', help='print the secret key and fallbacks a snapshot holds')
        secrets.add_argument('snapshot', metavar='SNAPSHOT|latest')

    def handle(self, *args, **options):
        try:
            getattr(self, 'handle_' + options['subcommand'].replace('-', '_'))(options)
        except BackupError as error:
            raise CommandError(str(error))

    def say(self, line):
        self.stdout.write(line)

    def handle_create(self, options):
        create.create(options['kind'], say=self.say)

    def handle_list(self, options):
        found = records.refresh()
        self.stdout.write(f'{len(found)} snapshot(s) in {restic.repository_name()}')
        rows = [('ID', 'TAKEN', 'KIND', 'SIZE', 'FILES', 'ROWS', 'ADDED')]
        for snapshot in reversed(found):
            item = records.describe(snapshot)
            rows.append((item['snapshot_id'][:8], format_local(item['taken_at']), item['kind'],
                         create.human_size(item['size']), str(item['files']), str(item['rows']),
                         create.human_size(item['added']) if item['added'] is not None else '-'))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write('  '.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        warning = restic.unconfigured_warning()
        if warning:
            self.stderr.write(f'warning: {warning}')

    def handle_restore(self, options):
        restore.restore(options['snapshot'], force=options['force'], say=self.say)
        self.stdout.write('backup: restart the web server and the cron container so that they use the restored '
                          'secret key: `docker compose restart web cron`')

    def handle_verify(self, options):
        verify.verify(say=self.say)

    def handle_before_migrate(self, options):
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if not plan:
            return
        if not settings.BACKUP_BEFORE_MIGRATE:
            self.stdout.write(f'backup: {len(plan)} migration(s) to apply; no snapshot first (BACKUP_BEFORE_MIGRATE '
                              'is off)')
            return
        if not executor.loader.applied_migrations or not restore.holds_data():
            return  # a new TOM: nothing to lose yet
        names = [f'{migration.app_label}.{migration.name}' for migration, _ in plan]
        self.stdout.write(f'backup: {len(plan)} migration(s) to apply ({", ".join(names[:5])}'
                          f'{"..." if len(names) > 5 else ""}): taking a snapshot first')
        try:
            create.create(BackupSnapshot.Kind.PRE_UPGRADE, note='before migrations ' + ', '.join(names),
                          say=self.say, prune=False)
        except BackupError as error:
            raise CommandError(f'the snapshot before migrating failed, so nothing was migrated: {error} '
                               '(set BACKUP_BEFORE_MIGRATE=false to migrate without one)')

    def handle_secrets(self, options):
        snapshot = restic.find(options['snapshot'])
        held = restore.read_secrets(snapshot)
        self.stdout.write(json.dumps(held, indent=1))
