"""Every URL of the TOM, walked from Django's resolver (so a URL that a new TOM Toolkit adds
fails here until docs/security.md has its row), requested by anonymous visitors (under both
AUTH_STRATEGY values), a user without permission, a user who may view the private target,
and staff, with GET and with POST (the CSRF token included, as a browser sends it).

Each answer must be the table's; whoever may not change the TOM leaves every watched row and
every data product file as it was; whoever may not view the private target never reads its
name in an answer. Each request runs in a transaction rolled back after it."""
import copy
from collections import defaultdict

import pytest
from django.db import transaction
from django.test import override_settings
from django.urls import get_resolver

from myapp.access.doors import DOORS
from tests.permission_matrix import (
    CHANGES,
    METHODS,
    OK,
    SECRET,
    TABLE,
    VISITORS,
    ask,
    client_for,
    fingerprint,
    outcome,
    read_table,
    request_parts,
    row_for,
    walk,
    writes_so_far,
)
from tests.permission_world import World

pytestmark = pytest.mark.django_db
ROWS = read_table()
ROUTES = list(walk())
# Who may change nothing, and who may not read the private target's name.
READ_ONLY_VISITORS = {'anonymous', 'anonymous (LOCKED)', 'no permission', 'viewer'}
MAY_NOT_VIEW = {'anonymous', 'anonymous (LOCKED)', 'no permission'}
LOGGED_IN = ['no permission', 'viewer', 'staff']
CLOSED = 'http://127.0.0.1:9'  # the discard port: nothing listens there


def sections():
    """The routes grouped by their first segment, a test each (the admin's apart)."""
    grouped = defaultdict(list)
    for route, pattern in ROUTES:
        grouped[route.split('/', 1)[0] or '(home)'].append((route, pattern))
    return grouped


SECTIONS = sections()


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / 'media'
    settings.TASKS = {'default': {'BACKEND': 'django_tasks.backends.database.DatabaseBackend'}}
    # Pages that ask LCO's archive (an observation's page) ask a closed port here: 502, at once.
    settings.FACILITIES = {**settings.FACILITIES, 'LCO': {**settings.FACILITIES['LCO'], 'portal_url': CLOSED,
                                                          'archive_url': CLOSED + '/'}}
    return World(SECRET)


def test_every_url_has_a_row_and_every_row_a_url():
    missing = [route for route, _ in ROUTES if row_for(route, ROWS) is None]
    stale = [row.route for row in ROWS if not any(row.covers(route) for route, _ in ROUTES)]

    assert not missing, f'URLs without a row in docs/security.md: {missing}'
    assert not stale, f'rows of docs/security.md for no URL: {stale}'
    print(f'permission matrix: {len(ROUTES)} URL patterns, {len(ROWS)} rows, '
          f'{len(ROUTES) * len(VISITORS) * len(METHODS)} cells')


def test_every_door_stands_in_front_of_a_url_and_is_told_to_the_operator():
    names = set(_url_names())
    page = TABLE.read_text()

    assert not [door.name for door in DOORS if door.name not in names]
    views = {door.covers: door.covers.split()[-1].rsplit('.', 1)[-1] for door in DOORS}  # ...views.TheView
    assert not [covers for covers, view in views.items() if view not in page]


def _url_names(resolver=None, namespace=''):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if hasattr(pattern, 'url_patterns'):
            inner = f'{namespace}{pattern.namespace}:' if pattern.namespace else namespace
            yield from _url_names(pattern, inner)
        elif pattern.name:
            yield f'{namespace}{pattern.name}'


# Django's admin site, every page of it staff only, is 190 of the URLs and a third of the time:
# make test walks it, the quick tier leaves it out (tests/test_doors.py asks its login page).
QUICK_SECTIONS = [pytest.param(section, marks=[pytest.mark.thorough] if section == 'admin' else [])
                  for section in sorted(SECTIONS)]


@pytest.mark.parametrize('section', QUICK_SECTIONS)
def test_each_visitor_gets_the_table_s_answer_and_changes_nothing_they_may_not(section, world):
    _walk_section(section, world, logged_in_strategies=['READ_ONLY'])


@pytest.mark.thorough
@pytest.mark.parametrize('section', sorted(SECTIONS))
def test_logged_in_visitors_answer_alike_under_locked(section, world):
    """AUTH_STRATEGY=LOCKED changes what anonymous visitors get only: logged in, the table's
    answers hold under it too (make test; the quick tier leaves it out)."""
    _walk_section(section, world, logged_in_strategies=['LOCKED'], visitors=LOGGED_IN)


def _walk_section(section, world, logged_in_strategies, visitors=VISITORS):
    clients = {visitor: client_for(visitor, world) for visitor in world.users}
    clients['anonymous'] = clients['anonymous (LOCKED)'] = client_for('anonymous', world)
    world.baseline = fingerprint()
    wrong = []
    for route, pattern in SECTIONS[section]:
        row = row_for(route, ROWS)
        path, query, form = request_parts(row, route, pattern, world)
        for visitor in visitors:
            strategies = _strategies(visitor) if visitor.startswith('anonymous') else logged_in_strategies
            for strategy, method in [(strategy, method) for strategy in strategies for method in METHODS]:
                with override_settings(AUTH_STRATEGY=strategy):
                    got, changed, leaked = _request(clients[visitor], method, path, query, form, world, visitor)
                    expected = row.expected[(visitor, method)]
                    may_change = expected.endswith(CHANGES)
                    if got != expected.rstrip(CHANGES):
                        wrong.append(f'{method} {path} as {visitor} ({strategy}): {got}, the table says {expected}')
                    elif changed != may_change and visitor in READ_ONLY_VISITORS:
                        did = 'changed the TOM' if changed else 'changed nothing'
                        wrong.append(f'{method} {path} as {visitor} ({strategy}) {did}; the table says {expected}')
                    if leaked:
                        wrong.append(f'{method} {path} as {visitor} ({strategy}) shows the private target\'s name')
    assert not wrong, f'{len(wrong)} cell(s) wrong:\n' + '\n'.join(wrong)


def _strategies(visitor):
    """Anonymous visitors have a column per strategy."""
    return ['LOCKED'] if visitor == 'anonymous (LOCKED)' else ['READ_ONLY']


def _request(client, method, path, query, form, world, visitor):
    """(outcome, whether the TOM changed, whether the answer names the private target), the
    request's writes rolled back after it."""
    cookies = client.cookies
    client.cookies = copy.deepcopy(cookies)  # a logout, say, must not log out the next request
    with transaction.atomic():
        writes = writes_so_far()
        response = ask(client, method, path, query, form, world.csrf_token)
        wrote = writes_so_far() != writes
        changed = visitor in READ_ONLY_VISITORS and wrote and fingerprint() != world.baseline
        transaction.set_rollback(True)
    client.cookies = cookies
    world.mend_files()
    leaked = visitor in MAY_NOT_VIEW and _names_secret(response)
    return outcome(response), changed, leaked


def _names_secret(response):
    body = b''.join(response.streaming_content) if getattr(response, 'streaming', False) else response.content
    text = body.decode(errors='replace')
    return SECRET in text or SECRET.replace(' ', '_') in text


def test_a_refused_cell_is_reported_with_what_was_asked(world, settings):
    """The matrix can fail: the merge page, with its door taken away for this test, lets a
    stranger read both targets' names (TOM Toolkit 3.1.0's own behaviour)."""
    from myapp.access import doors

    settings.AUTH_STRATEGY = 'READ_ONLY'
    merge = doors.BY_NAME.pop('targets:merge')
    world.baseline = fingerprint()
    try:
        client = client_for('no permission', world)
        got, changed, leaked = _request(client, 'GET', f'/targets/merge/{world.private.pk}/{world.public.pk}',
                                        {}, {}, world, 'no permission')
    finally:
        doors.BY_NAME['targets:merge'] = merge
    assert (got, leaked) == (OK, True)
