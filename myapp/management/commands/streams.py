"""`manage.py streams`: the alert streams' command line (the cron program runs them).

  streams check           check the declaration (STREAMS_FILE, ALERT_STREAMS): exit 1 naming what is wrong
  streams list            each stream: status, connected since, last message, messages per hour, dead letters
  streams listen NAME     run one stream until SIGTERM (the cron program starts one such process per stream)
  streams pause NAME [--reason TEXT], streams resume NAME
  streams retry ID        hand a dead letter to its handler again
"""
import getpass

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from myapp.failures import one_line
from myapp.logs import Say
from myapp.streams import consume, declaration, state
from myapp.timing import format_local


class Command(BaseCommand):
    help = "Checks, lists, runs, pauses and retries the TOM's alert streams."
    requires_system_checks = []

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest='subcommand', required=True, metavar='SUBCOMMAND')
        check = subcommands.add_parser('check', help='check the streams declared; exit 1 naming what is wrong')
        check.add_argument('--file', help='the declaration to check (default: STREAMS_FILE)')
        subcommands.add_parser('list', help='each stream: status, last message, messages per hour, dead letters')
        listen = subcommands.add_parser('listen', help='run one stream until SIGTERM (the cron program does)')
        listen.add_argument('name')
        pause = subcommands.add_parser('pause', help="stop a stream's processes on every replica until resumed")
        pause.add_argument('name')
        pause.add_argument('--reason', default='')
        resume = subcommands.add_parser('resume', help='start a paused stream again, from where it stopped')
        resume.add_argument('name')
        retry = subcommands.add_parser('retry', help='hand a dead letter to its handler again')
        retry.add_argument('id', type=int)

    def handle(self, *args, **options):
        try:
            return getattr(self, 'handle_' + options['subcommand'])(options)
        except declaration.DeclarationError as error:
            raise CommandError(str(error))

    def handle_check(self, options):
        streams = declaration.load(options['file'])
        for stream in streams:
            what = 'active' if stream.active else 'inactive'
            self.stdout.write(f'{stream.name}: {stream.class_path}, {what}, topics {", ".join(stream.handlers)}')
        self.stdout.write(f'ok: {len(streams)} stream(s) declared')

    def handle_list(self, options):
        found = state.report()
        for row in found.rows:
            item = row.as_dict(found.now)
            since = format_local(row.connected_since(found.now)) if row.connected_since(found.now) else '-'
            last = format_local(row.state.last_message_at) if row.state.last_message_at else 'never'
            self.stdout.write(f'{row.name}: {item["status"]}; connected since {since}; last message {last}; '
                              f'{item["messages_per_hour"]} per hour; {item["restarts"]} restart(s); '
                              f'{item["dead_letters_waiting"]} dead letter(s) waiting')
        if not found.rows:
            self.stdout.write('no stream is declared')

    def handle_listen(self, options):
        stream = declaration.find(options['name'])
        say = Say('streams', stream=stream.name)  # LOG_FORMAT=json: each line names its stream
        try:
            if stream.ours:
                status = consume.Listener(stream, say).run()
            else:
                consume.run_foreign(stream, say)
                status = 1
        except consume.StreamFailed as error:
            raise CommandError(f'stream {stream.name}: {error}')
        except DatabaseError as error:
            raise CommandError(f'stream {stream.name}: the database failed: {one_line(error)}')
        except Exception as error:
            from confluent_kafka import KafkaException

            if isinstance(error, KafkaException):
                raise CommandError(f'stream {stream.name}: Kafka: {one_line(error)}')
            raise
        if status:
            raise SystemExit(status)

    def handle_pause(self, options):
        if not state.pause(options['name'], getpass.getuser(), options['reason']):
            raise CommandError(f'no stream {options["name"]!r} runs (see `streams list`)')
        self.stdout.write(f'streams: {options["name"]} paused; every replica stops it within seconds')

    def handle_resume(self, options):
        if not state.resume(options['name']):
            raise CommandError(f'{options["name"]} is not paused')
        self.stdout.write(f'streams: {options["name"]} resumed')

    def handle_retry(self, options):
        try:
            error = state.retry(options['id'], getpass.getuser())
        except state.RetryRefused as refusal:
            raise CommandError(str(refusal))
        if error:
            raise CommandError(f'dead letter {options["id"]} failed again: {error}')
        self.stdout.write(f'streams: dead letter {options["id"]} stored')
