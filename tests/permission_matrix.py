"""The permission matrix: every URL of the TOM requested by each visitor (anonymous under both
AUTH_STRATEGY values, a user without permission, a viewer of the private target, staff), with
GET and POST, against a TOM holding real rows (tests/permission_world.py); what each answer
must be is the table in docs/security.md, which this module reads. Used by
tests/test_permission_matrix.py, whose failures name each cell's answer and the table's."""
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / 'docs' / 'security.md'
VISITORS = ['anonymous', 'anonymous (LOCKED)', 'no permission', 'viewer', 'staff']
METHODS = ['GET', 'POST']
# What the answers say, in the table's words.
OK, LOGIN = 'ok', 'login'
CHANGES = '*'               # after an answer: and the request changes the TOM (it may, and does)
SECRET = 'SN 2026priv'      # the private target's name: never in an answer to whom may not view it
# Tables whose rows no visitor without the right may change: what the TOM holds.
WATCHED_APPS = {'tom_targets', 'tom_dataproducts', 'tom_observations', 'tom_calendar', 'django_comments',
                'tom_dataservices', 'auth', 'guardian', 'myapp', 'django_tasks_database', 'sites'}
UNWATCHED_FIELDS = {'last_login'}  # logging the test's visitors in writes it
UNWATCHED_MODELS = {'auth.Permission'}  # made by migrations only; 221 rows to read each time


def walk(patterns=None, prefix=''):
    """(route, URLPattern) of every URL the TOM answers, as Django's resolver holds them."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


@dataclass
class Row:
    route: str                  # as walk() names it, or a prefix ending in '*'
    arguments: str              # how to fill it: name=object ... ?query=object &post=object
    expected: dict              # {(visitor, method): outcome}

    def covers(self, route):
        return route == self.route or (self.route.endswith('*') and route.startswith(self.route[:-1]))


def read_table(path=TABLE):
    """The matrix rows of docs/security.md: lines `| `route` | arguments | GET POST | ... |`."""
    rows = []
    for line in path.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if len(cells) != 2 + len(VISITORS) or not cells[0].startswith('`'):
            continue
        expected = {}
        for visitor, cell in zip(VISITORS, cells[2:], strict=True):
            answers = cell.split()
            if len(answers) != len(METHODS):
                raise ValueError(f'{cells[0]}: {visitor}: {cell!r} is not one answer per method')
            expected.update({(visitor, method): answer for method, answer in zip(METHODS, answers, strict=True)})
        rows.append(Row(cells[0].strip('`'), cells[1].replace('`', '').strip(), expected))
    return rows


def row_for(route, rows):
    exact = [row for row in rows if row.route == route]
    return (exact or [row for row in rows if row.covers(route)] or [None])[0]


def writes_so_far():
    """A count that grows with every row this connection writes (SQLite's total_changes(), the
    transaction's row counts on PostgreSQL), so that the fingerprint is taken only after a
    request that wrote."""
    from django.db import connection

    query = {'sqlite': 'SELECT total_changes()',
             'postgresql': 'SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables'}
    with connection.cursor() as cursor:
        cursor.execute(query[connection.vendor])
        return cursor.fetchone()[0]


def fingerprint():
    """A digest of every watched row and of the data product files: equal before and after a
    request means the request changed nothing the TOM holds."""
    digest = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda model: model._meta.db_table):
        if model._meta.app_label not in WATCHED_APPS or model._meta.label in UNWATCHED_MODELS:
            continue
        fields = [field.attname for field in model._meta.concrete_fields if field.attname not in UNWATCHED_FIELDS]
        for values in model.objects.order_by('pk').values_list(*fields):
            digest.update(repr(values).encode())
    media = Path(settings.MEDIA_ROOT)
    for file in sorted(media.rglob('*')) if media.exists() else []:
        if file.is_file():
            digest.update(str(file.relative_to(media)).encode() + file.read_bytes())
    return digest.hexdigest()


# The TOM's login page, and the admin's, which sends its visitors to the TOM's (a door).
LOGIN_PAGES = {settings.LOGIN_URL, '/admin/login/'}


def outcome(response):
    """The table's word for an answer: ok, login, or the refusal's status code."""
    status = response.status_code
    location = response.get('Location') or response.get('HX-Redirect') or ''
    if status in (301, 302, 303) or response.get('HX-Redirect'):
        return LOGIN if location.split('?')[0] in LOGIN_PAGES else OK
    return OK if status < 400 else str(status)


ARGUMENT = re.compile(r'([?&]?)([\w-]+)=(\S+)')


def request_parts(row, route, pattern, world):
    """(path, query, form) for ROUTE, its parameters filled from the row's arguments with the
    world's objects (or the row's literal text)."""
    values, query, form = {}, {}, {}
    for where, name, value in ARGUMENT.findall(row.arguments):
        value = world.value(value)
        {'': values, '?': query, '&': form}[where][name] = value
    path = "/" + _fill(route, values)
    return path, query, form


def _fill(route, values):
    """The route with each converter or regex group replaced by its value."""
    if '(?P<' not in route and '^' not in route:
        return re.sub(r'<(?:\w+:)?(\w+)>', lambda match: str(values.get(match.group(1), '1')), route)
    # A regex route: its named groups, its anchors and optional slash dropped.
    text = re.sub(r'\(\?P<(\w+)>[^)]*\)', lambda match: str(values.get(match.group(1), '1')), route)
    numbered = iter(str(values.get(str(number), '1')) for number in range(1, 10))  # unnamed groups: 1=, 2=
    text = re.sub(r'\((?:\\d\+|\.\+|\[[^\]]*\]\+)\)', lambda match: next(numbered), text)
    return text.replace('^', '').replace('$', '').replace('/?', '/').replace('\\.', '.')


def client_for(visitor, world):
    """A browser of VISITOR's: logged in as their user, its CSRF token in a cookie and in every
    POST (as the TOM's own forms send it)."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    user = world.users.get(visitor)
    if user is not None:
        client.force_login(user)
    client.cookies[settings.CSRF_COOKIE_NAME] = world.csrf_token
    return client


def ask(client, method, path, query, form, token):
    if method == 'GET':
        return client.get(path, query)
    suffix = '?' + '&'.join(f'{key}={value}' for key, value in query.items()) if query else ''
    return client.post(path + suffix, {**form, 'csrfmiddlewaretoken': token}, HTTP_X_CSRFTOKEN=token)
