"""Our Kafka stream class, for any broker a TOM reads alerts from (a plain one, SASL, TLS),
and the consumer settings of each stream our loop runs (ours, and tom-alertstreams' GCN
class, whose options become gcn-kafka's settings)."""
import re
from datetime import UTC, datetime

from django.conf import settings
from tom_alertstreams.alertstreams.alertstream import AlertStream

from myapp.timing import parse_duration

SECURITY_PROTOCOLS = ('PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL')
SASL_MECHANISMS = ('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512')
DEFAULT_HANDLER_TIMEOUT = 300.0
EARLIEST, LATEST = 'earliest', 'latest'
SESSION_TIMEOUT_MS = 10000


class KafkaStream(AlertStream):
    """OPTIONS: BOOTSTRAP_SERVERS, TOPIC_HANDLERS ({topic: handler's dotted path}), and
    GROUP_ID (default: the TOM's name and the stream's), START (where a new consumer group
    starts: `latest`, the default, from when the TOM first ran the stream; `earliest`; or a
    time, `2026-12-01T00:00:00Z`), HANDLER_TIMEOUT (a message whose handler runs longer is a
    dead letter; 5m), SECURITY_PROTOCOL, SASL_MECHANISM, SASL_USERNAME, SASL_PASSWORD, and
    CONFIG (further librdkafka settings)."""

    required_keys = ['BOOTSTRAP_SERVERS', 'TOPIC_HANDLERS']
    allowed_keys = ['BOOTSTRAP_SERVERS', 'TOPIC_HANDLERS', 'GROUP_ID', 'START', 'HANDLER_TIMEOUT',
                    'SECURITY_PROTOCOL', 'SASL_MECHANISM', 'SASL_USERNAME', 'SASL_PASSWORD', 'CONFIG']

    @staticmethod
    def check_options(options):
        """ValueError with one line for an option out of its range."""
        parse_start(options.get('START', LATEST))
        handler_timeout(options)
        protocol = str(options.get('SECURITY_PROTOCOL', 'PLAINTEXT')).upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f'SECURITY_PROTOCOL {protocol!r} is not one of {", ".join(SECURITY_PROTOCOLS)}')
        mechanism = options.get('SASL_MECHANISM')
        if mechanism and str(mechanism).upper() not in SASL_MECHANISMS:
            raise ValueError(f'SASL_MECHANISM {mechanism!r} is not one of {", ".join(SASL_MECHANISMS)}')
        if protocol.startswith('SASL') and not (options.get('SASL_USERNAME') and options.get('SASL_PASSWORD')):
            raise ValueError(f'SECURITY_PROTOCOL {protocol} needs SASL_USERNAME and SASL_PASSWORD')
        if not isinstance(options.get('CONFIG', {}), dict):
            raise ValueError('CONFIG must be a table of librdkafka settings')

    def listen(self):
        raise NotImplementedError('run it with `manage.py streams listen NAME` (the cron container does)')


def parse_start(text):
    """`earliest`, `latest`, or an aware datetime; ValueError otherwise."""
    text = str(text).strip()
    if text.lower() in (EARLIEST, LATEST):
        return text.lower()
    try:
        moment = datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        raise ValueError(f'START {text!r} is not earliest, latest or a time such as 2026-12-01T00:00:00Z')
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def handler_timeout(options):
    try:
        return parse_duration(options.get('HANDLER_TIMEOUT', DEFAULT_HANDLER_TIMEOUT))
    except ValueError as error:
        raise ValueError(f'HANDLER_TIMEOUT: {error}')


def default_group(stream):
    return f'{re.sub(r"[^A-Za-z0-9._-]+", "-", settings.TOM_NAME)}-{stream.name}'


def consumer_settings(stream):
    """(librdkafka settings, where a new group starts, handler timeout in seconds): offsets are
    never committed nor stored by the client itself, only after the handlers have stored."""
    options = stream.options
    if stream.class_path.endswith('GCNClassicAlertStream'):
        from gcn_kafka.core import get_config

        config = get_config('consumer', options.get('CONFIG'), client_id=options['GCN_CLASSIC_CLIENT_ID'],
                            client_secret=options['GCN_CLASSIC_CLIENT_SECRET'], domain=options.get('DOMAIN'))
        if not (options.get('CONFIG') or {}).get('group.id'):
            config['group.id'] = default_group(stream)  # gcn-kafka's own is a new group at each start
    else:
        config = {'bootstrap.servers': options['BOOTSTRAP_SERVERS'],
                  'group.id': options.get('GROUP_ID') or default_group(stream),
                  'security.protocol': str(options.get('SECURITY_PROTOCOL', 'PLAINTEXT')).lower()}
        if options.get('SASL_USERNAME'):
            config.update({'sasl.mechanisms': str(options.get('SASL_MECHANISM', 'SCRAM-SHA-512')).upper(),
                           'sasl.username': options['SASL_USERNAME'], 'sasl.password': options['SASL_PASSWORD']})
        config.update(options.get('CONFIG') or {})
    # A process killed leaves its group only when the broker stops hearing it: its partitions
    # wait that long for its replacement (librdkafka's 45 s by default), so 10 s, unless set.
    config.setdefault('session.timeout.ms', SESSION_TIMEOUT_MS)
    config.update({'enable.auto.commit': False, 'enable.auto.offset.store': False,
                   'enable.partition.eof': False})
    return config, parse_start(options.get('START', LATEST)), handler_timeout(options)
