"""A TOM in processes of its own for the backup tests (tests/test_backup*.py): its database,
data folder and secret key file, what it is filled with, and how to read back what it holds
and whether a session cookie still signs its user in."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import REPO, tool

PASSPHRASE = 'correct horse battery staple'
TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

# Run in the first TOM: what a TOM holds after some months.
POPULATE = '''
import json, os
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone
from allauth.mfa.totp.internal.auth import TOTP
from tom_targets.models import Target
from tom_observations.models import ObservationRecord
from tom_dataproducts.models import DataProduct, ReducedDatum
from myapp.models import JobRun

pi = User.objects.create_user('pi', 'pi@example.org', 'a long password')
pi.is_staff = True
pi.save()
TOTP.activate(pi, TOTP_SECRET)
target = Target.objects.create(name='SN 2026abc', type='SIDEREAL', ra=150.1, dec=-30.2)
record = ObservationRecord.objects.create(target=target, facility='LCO', observation_id='4242', status='COMPLETED',
                                          parameters={})
for n in range(3):
    product = DataProduct.objects.create(target=target, observation_record=record, product_id=f'frame-{n}',
                                         data_product_type='image_file')
    product.data.save(f'frame-{n}.fits', ContentFile(os.urandom(200_000 + n)))  # frames do not compress
for n in range(50):
    ReducedDatum.objects.create(target=target, data_type='photometry', timestamp=timezone.now(),
                                value={'magnitude': 15 + n / 100, 'filter': 'r'})
JobRun.objects.create(name='save_data', command='save_data', host='h', pid=1, started_at=timezone.now(),
                      outcome='succeeded', summary='done: 1 record(s) checked')
client = Client()
assert client.login(request=HttpRequest(), username='pi', password='a long password')  # django-axes needs a request
print(json.dumps({'session': client.cookies['sessionid'].value}))
'''.replace('TOTP_SECRET', repr(TOTP_SECRET))

# Run in either TOM: what it holds, and whether a session cookie still signs its user in.
DESCRIBE = '''
import hashlib, json, sys
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.test import Client
from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from tom_targets.models import Target
from tom_dataproducts.models import DataProduct, ReducedDatum
from myapp.models import JobRun

session = sys.stdin.read().strip()
client = Client()
if session:
    client.cookies['sessionid'] = session
page = client.get('/jobs/')
pi = User.objects.filter(username='pi').first()
totp = Authenticator.objects.filter(user=pi, type='totp').first()
print(json.dumps({
    'users': sorted(User.objects.values_list('username', flat=True)),
    'password_ok': bool(pi and pi.check_password('a long password')),
    'totp_secret': get_adapter().decrypt(totp.data['secret']) if totp else None,
    'targets': list(Target.objects.values_list('name', 'ra', 'dec')),
    'photometry': ReducedDatum.objects.count(),
    'products': sorted((p.product_id, hashlib.sha256(p.data.read()).hexdigest()) for p in DataProduct.objects.all()),
    'job_runs': list(JobRun.objects.values_list('name', 'summary')),
    'signed_in': page.status_code == 200 and b'Jobs' in page.content,
}))
'''


class Tom:
    """One TOM: its database, data folder, secret key file, and the backup repository it uses."""

    def __init__(self, folder, database_url, repository, key):
        self.folder = Path(folder)
        self.key_file = self.folder / 'secrets' / 'secret_key'
        self.key_file.parent.mkdir(parents=True)
        self.key_file.write_text(key + '\n')
        path = os.pathsep.join([str(Path(tool('restic')).parent), str(Path(sys.executable).parent),
                                os.environ['PATH']])
        self.env = {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': '',
                    'SECRET_KEY_FILE': str(self.key_file), 'DATA_DIR': str(self.folder / 'data'),
                    'DATABASE_URL': database_url, 'BACKUP_REPOSITORY': str(repository),
                    'BACKUP_PASSPHRASE': PASSPHRASE, 'PATH': path, 'PYTHONUNBUFFERED': '1',
                    'ALLOWED_HOSTS': 'testserver'}

    def manage(self, *args, stdin=None, env=None, timeout=300):
        return subprocess.run([sys.executable, str(REPO / 'manage.py'), *args], input=stdin,
                              env={**self.env, **(env or {})}, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args, **kwargs):
        done = self.manage(*args, **kwargs)
        assert done.returncode == 0, f'{args} failed:\n{done.stdout}\n{done.stderr}'
        return done

    def shell(self, script, stdin=''):
        return json.loads(self.ok('shell', '--no-imports', '-c', script, stdin=stdin).stdout.strip().splitlines()[-1])


def database_factory():
    """Makes database URLs for new databases, empty or a copy of another one (`like`, a URL
    this factory made): SQLite files, or databases on the PostgreSQL server the suite runs
    against (dropped afterwards)."""
    base = os.environ.get('DATABASE_URL', '')
    made = []

    def new(folder, like=None):
        if not base.startswith('postgres'):
            url = f'sqlite:///{folder}/db.sqlite3'
            if like:
                _copy_sqlite(urlsplit(like).path[1:], urlsplit(url).path[1:])
            return url
        import psycopg

        name = f'backup_{uuid.uuid4().hex[:10]}'
        template = f' TEMPLATE {urlsplit(like).path[1:]}' if like else ''
        with psycopg.connect(_maintenance(base), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE {name}{template}')
        made.append(name)
        return urlsplit(base)._replace(path=f'/{name}').geturl()

    yield new
    if made:
        import psycopg

        with psycopg.connect(_maintenance(base), autocommit=True) as admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


def _copy_sqlite(source, target):
    """A consistent copy, whatever the source's journal holds (SQLite's backup API)."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    original.close()
    copy.close()


def _maintenance(url):
    """The server's `postgres` database, from which databases are made and dropped."""
    return urlsplit(url)._replace(path='/postgres').geturl()


class Templates:
    """The two TOMs the backup tests start from, migrated (and filled) once per test process
    and copied for each test: a migrate is about 9 s of a process, a copy well under one.
    A copy is what the commands would have left: the same tables and rows, and files."""
    FIRST_KEY = 'the-first-key' * 4

    def __init__(self, folder, databases):
        self.folder = Path(folder)
        self.databases = databases
        self.made = {}          # 'empty'/'filled': (the template TOM, its user's session cookie)

    def _template(self, kind):
        if kind not in self.made:
            folder = self.folder / kind
            tom = Tom(folder, self.databases(folder), folder / 'repository', self.FIRST_KEY)
            tom.ok('migrate', '--no-input', '-v', '0')
            session = tom.shell(POPULATE)['session'] if kind == 'filled' else None
            self.made[kind] = (tom, session)
        return self.made[kind]

    def first(self, tmp_path, databases):
        """A TOM with data in it, and the session cookie of its logged-in user."""
        return self._copy('filled', tmp_path / 'first', databases, self.FIRST_KEY)

    def second(self, tmp_path, databases):
        """A new stack's TOM: migrated, nothing in it, a secret key of its own."""
        tom, _ = self._copy('empty', tmp_path / 'second', databases, 'second-generated-key' * 3)
        return tom

    def _copy(self, kind, folder, databases, key):
        """A new TOM in folder, whose database and data folder are copies of the template's;
        it backs up into the test's repository, beside folder."""
        template, session = self._template(kind)
        tom = Tom(folder, databases(folder, like=template.env['DATABASE_URL']), folder.parent / 'repository', key)
        if Path(template.env['DATA_DIR']).exists():
            shutil.copytree(template.env['DATA_DIR'], tom.env['DATA_DIR'])
        return tom, session
