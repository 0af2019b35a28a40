"""The alert streams the TOM runs, declared as code: STREAMS_FILE (./streams.toml, a list of
[[stream]] tables) and settings.ALERT_STREAMS (TOM Toolkit's form), read and checked here.

A stream is TOM Toolkit's ALERT_STREAMS entry (its class, NAME there, and its OPTIONS) with a
name of its own, whether it is active, and the longest silence it is allowed. Strings in the
options may name variables, `${NAME}`: the variable's value, or the content of the file that
NAME_FILE names (how secrets reach containers). Every problem is one line naming the stream
and what is wrong: an unknown class, a handler that does not import, an option it does not
take, a variable that is not set."""
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

from myapp.timing import parse_duration

NAME = re.compile(r'^[a-z0-9][a-z0-9._-]{0,62}$')
VARIABLE = re.compile(r'\$\{([A-Za-z_][A-Za-z0-9_]*)\}')
TABLE_KEYS = {'name', 'class', 'active', 'longest_silence', 'options'}
OUR_CLASS = 'myapp.streams.kafka.KafkaStream'
GCN_CLASS = 'tom_alertstreams.alertstreams.gcn.GCNClassicAlertStream'


class DeclarationError(ValueError):
    """One line: which stream, what is wrong."""


@dataclass
class Stream:
    name: str
    class_path: str
    options: dict = field(default_factory=dict)
    active: bool = True
    longest_silence: float | None = None    # seconds; None: silence is never a problem
    source: str = ''                        # the file, or settings.ALERT_STREAMS

    @property
    def handlers(self):
        return dict(self.options.get('TOPIC_HANDLERS') or {})

    @property
    def ours(self):
        """Run by our loop, at least once with commits after storing (our class, GCN's)."""
        return self.class_path in (OUR_CLASS, GCN_CLASS)


def load(path=None, environ=None, alert_streams=None):
    """Every stream declared (active or not), checked; DeclarationError otherwise."""
    path = Path(path or settings.STREAMS_FILE)
    environ = os.environ if environ is None else environ
    streams = list(_from_file(path, environ)) if path.exists() else []
    legacy = getattr(settings, 'ALERT_STREAMS', []) if alert_streams is None else alert_streams
    streams += list(_from_settings(legacy or [], environ))
    seen = set()
    for stream in streams:
        if stream.name in seen:
            raise DeclarationError(f'stream {stream.name}: declared twice ({stream.source})')
        seen.add(stream.name)
        check(stream)
    return streams


def active(path=None):
    return [stream for stream in load(path) if stream.active]


def find(name, path=None):
    for stream in load(path):
        if stream.name == name:
            return stream
    raise DeclarationError(f'no stream {name!r} is declared in {path or settings.STREAMS_FILE} or ALERT_STREAMS')


def _from_file(path, environ):
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise DeclarationError(f'{path}: cannot be read: {error.strerror}')
    except tomllib.TOMLDecodeError as error:
        raise DeclarationError(f'{path}: not valid TOML: {error}')
    unknown = set(document) - {'stream'}
    if unknown:
        raise DeclarationError(f'{path}: unknown table {sorted(unknown)[0]!r} (streams are [[stream]] tables)')
    tables = document.get('stream', [])
    if not isinstance(tables, list):
        raise DeclarationError(f'{path}: write each stream as a [[stream]] table')
    for number, table in enumerate(tables, 1):
        where = f'{path}: stream {table.get("name") or number}'
        extra = set(table) - TABLE_KEYS
        if extra:
            raise DeclarationError(f'{where}: unknown key {sorted(extra)[0]!r} (keys: {", ".join(sorted(TABLE_KEYS))})')
        for key in ('name', 'class'):
            if not isinstance(table.get(key), str) or not table[key]:
                raise DeclarationError(f'{where}: {key!r} is missing')
        options = table.get('options', {})
        if not isinstance(options, dict):
            raise DeclarationError(f'{where}: options must be a table')
        active = _boolean(table.get('active', True), where)
        # An inactive stream's variables need not be set.
        yield Stream(_name(table['name'], where), table['class'],
                     _expand(options, environ if active else None, where), active,
                     _silence(table.get('longest_silence'), where), str(path))


def _from_settings(entries, environ):
    """TOM Toolkit's ALERT_STREAMS: [{'NAME': class, 'OPTIONS': {...}, 'ACTIVE': bool}]; the
    stream is named by OPTIONS' STREAM_NAME, or else its class."""
    for entry in entries:
        class_path = entry.get('NAME', '')
        options = dict(entry.get('OPTIONS', {}))
        name = options.pop('STREAM_NAME', None) or class_path.rsplit('.', 1)[-1].lower()
        silence = options.pop('LONGEST_SILENCE', None)
        where = f'ALERT_STREAMS: stream {name}'
        active = bool(entry.get('ACTIVE', True))
        yield Stream(_name(name, where), class_path, _expand(options, environ if active else None, where),
                     active, _silence(silence, where), 'settings.ALERT_STREAMS')


def check(stream):
    """Its class imports and is a stream class, its options are those the class takes, and
    each handler imports and can be called."""
    from tom_alertstreams.alertstreams.alertstream import AlertStream

    where = f'stream {stream.name}'
    try:
        klass = import_string(stream.class_path)
    except ImportError as error:
        raise DeclarationError(f'{where}: class {stream.class_path!r} does not import: {error}')
    if not (isinstance(klass, type) and issubclass(klass, AlertStream)):
        raise DeclarationError(f'{where}: {stream.class_path!r} is not an alert stream class (an AlertStream)')
    allowed = set(getattr(klass, 'allowed_keys', ())) | {'TOPIC_HANDLERS'}
    unknown = set(stream.options) - allowed
    if unknown:
        raise DeclarationError(f'{where}: {stream.class_path} takes no option {sorted(unknown)[0]!r} '
                               f'(it takes {", ".join(sorted(allowed))})')
    missing = set(getattr(klass, 'required_keys', ())) - set(stream.options)
    if missing:
        raise DeclarationError(f'{where}: option {sorted(missing)[0]!r} is missing')
    handlers = stream.options.get('TOPIC_HANDLERS')
    if not isinstance(handlers, dict) or not handlers:
        raise DeclarationError(f'{where}: TOPIC_HANDLERS must map each topic to a handler')
    for topic, path in handlers.items():
        handler_function(stream, topic, path)
    if hasattr(klass, 'check_options'):
        try:
            klass.check_options(stream.options)
        except ValueError as error:
            raise DeclarationError(f'{where}: {error}')


def handler_function(stream, topic, path):
    """The handler of topic, imported; DeclarationError naming it if it does not import."""
    try:
        handler = import_string(str(path))
    except ImportError as error:
        raise DeclarationError(f'stream {stream.name}: the handler of {topic!r}, {path!r}, does not import: {error}')
    if not callable(handler):
        raise DeclarationError(f'stream {stream.name}: the handler of {topic!r}, {path!r}, is not a function')
    return handler


def _name(name, where):
    if not isinstance(name, str) or not NAME.match(name):
        raise DeclarationError(f'{where}: the name {name!r} must be lower-case letters, digits, ".", "_" or "-"')
    return name


def _boolean(value, where):
    if not isinstance(value, bool):
        raise DeclarationError(f'{where}: active must be true or false, not {value!r}')
    return value


def _silence(value, where):
    if value in (None, ''):
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise DeclarationError(f'{where}: longest_silence: {error}')


def _expand(value, environ, where):
    """Strings with ${NAME} replaced by the variable NAME, or the content of NAME_FILE (as
    they are when environ is None)."""
    if environ is None:
        return value
    if isinstance(value, dict):
        return {key: _expand(item, environ, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, environ, where) for item in value]
    if isinstance(value, str):
        return VARIABLE.sub(lambda match: _variable(match.group(1), environ, where), value)
    return value


def _variable(name, environ, where):
    if environ.get(name):
        return environ[name]
    path = environ.get(f'{name}_FILE')
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise DeclarationError(f'{where}: {name}_FILE {path} cannot be read: {error.strerror}')
    raise DeclarationError(f'{where}: the variable {name} (or {name}_FILE) is not set')
