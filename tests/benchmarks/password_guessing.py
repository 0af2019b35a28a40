"""How many passwords an attacker may try per hour, per account and per address, through each
door that takes one: the login form, `POST /api/token-auth/` and HTTP Basic on the API, as
the TOM was (django-axes off, Basic on) and as it is.

    .venv/bin/python tests/benchmarks/password_guessing.py [--tries N]

Against a throwaway SQLite TOM (the product's settings, its real password hasher), in this
process with Django's test client: for each door, wrong passwords until the door refuses the
right one too or N tries pass. A door still open after N tries is limited only by how fast
the server checks a password: tries per hour = 3600 / the measured seconds per try (one
worker). A door that locks allows its count per window: django-allauth's own (the login form,
before, counted in each web container's cache) or LOGIN_LOCK_WINDOW (django-axes, after).
"""
import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSWORD = 'the right password, at last'


def setup():
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mytom.settings')
    os.environ.setdefault('SECRET_KEY', 'benchmark-only')
    os.environ['DATA_DIR'] = tempfile.mkdtemp(prefix='mytom-guessing-')
    os.environ['ALLOWED_HOSTS'] = 'testserver'  # Django's test client's host
    sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command('migrate', verbosity=0)


def doors(was):
    """(name, a function trying one password for one account from one address, answering
    whether it got in)."""
    from django.test import Client

    def form(username, password, address):
        client = Client(REMOTE_ADDR=address)
        client.post('/accounts/login/', {'login': username, 'password': password})
        return '_auth_user_id' in client.session

    def token(username, password, address):
        response = Client(REMOTE_ADDR=address).post('/api/token-auth/', {'username': username, 'password': password})
        return response.status_code == 200

    def basic(username, password, address):
        credentials = base64.b64encode(f'{username}:{password}'.encode()).decode()
        response = Client(REMOTE_ADDR=address).get('/api/jobs/', HTTP_AUTHORIZATION=f'Basic {credentials}')
        return response.status_code == 200

    return [('login form', form), ('/api/token-auth/', token)] + ([('HTTP Basic on /api/', basic)] if was else [])


def guesses(door, tries, per_address):
    """(how many wrong passwords a lock allows before it refuses even the right one, or None
    if N wrong tries still let the right one in; the median seconds per try)."""
    seconds = []

    def attack(count):
        _forget()
        for number in range(count):
            started = time.perf_counter()
            door(f'user{number}' if per_address else 'pi', f'guess {number}', '203.0.113.9')
            seconds.append(time.perf_counter() - started)
        return door('pi', PASSWORD, '203.0.113.9')

    if attack(tries):
        return None, statistics.median(seconds)
    return next(count for count in range(1, tries + 1) if not attack(count)), statistics.median(seconds)


def _forget():
    """No earlier failure counted: django-axes' records, and django-allauth's own count of the
    login form's failures (in the cache)."""
    from axes.utils import reset
    from django.core.cache import cache

    reset()
    cache.clear()


def allauth_windows():
    """Seconds of django-allauth's own login-failure windows (per account, per address), the
    only lock the TOM had: its rate limit reads like `10/m/ip,5/300s/key`."""
    from allauth.account import app_settings

    units = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}
    windows = {}
    for rule in app_settings.RATE_LIMITS['login_failed'].split(','):
        _, period, key = rule.split('/')
        number = period.rstrip('smhd') or '1'
        windows[key] = int(number) * units[period[-1]]
    return windows['key'], windows['ip']


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tries', type=int, default=30)
    tries = parser.parse_args().tries
    setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import override_settings

    User.objects.create_user('pi', password=PASSWORD)
    axes_window = settings.AXES_COOLOFF_TIME.total_seconds()
    basic = [*settings.REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'],
             'rest_framework.authentication.BasicAuthentication']
    was = {'AXES_ENABLED': False,
           'REST_FRAMEWORK': {**settings.REST_FRAMEWORK, 'DEFAULT_AUTHENTICATION_CLASSES': basic}}
    print(f'{"door":<22} {"":<6} {"per account / hour":>20} {"per address / hour":>20}')
    for label, overrides in (('before', was), ('after', {})):
        with override_settings(**overrides):
            for name, door in doors(label == 'before'):
                row = []
                for per_address in (False, True):
                    count, seconds = guesses(door, tries, per_address)
                    window = allauth_windows()[per_address] if label == 'before' else axes_window
                    row.append(f'{3600 / seconds:,.0f} (no lock)' if count is None else
                               f'{count * 3600 / window:,.0f} ({count} per {window / 60:g} min)')
                print(f'{name:<22} {label:<6} {row[0]:>20} {row[1]:>20}')


if __name__ == '__main__':
    main()
