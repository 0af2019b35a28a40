"""`manage.py backup` against the plain recipe (`pg_dump | gzip` and `tar czf` of the data
folder, restored with `psql` and `tar x`), side by side, on one TOM.

    tests/with_postgres.sh .venv/bin/python tests/benchmarks/backup_vs_recipe.py [--targets 2000]
        [--photometry 50000] [--gigabytes 2] [--file-megabytes 4]

Builds a TOM on the PostgreSQL server of DATABASE_URL (a database of its own) with TARGETS
targets, PHOTOMETRY photometry points and GIGABYTES of data product files (random bytes, as
noisy frames are: they neither compress nor deduplicate), then measures, each as its own
process as cron would:
  1. the first backup: time, bytes in the repository, peak memory of the process tree;
  2. the next backup of the unchanged TOM: time, bytes added;
  3. a restore into a fresh database and data folder: the recovery time;
and the same three for the recipe (whose second backup is a whole copy again), then prints
the table and the ratios against the issue's goals. A script, not a test: it needs a few GB
of disk and about ten minutes.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]

POPULATE = '''
import os
from django.utils import timezone
from tom_targets.models import Target
from tom_dataproducts.models import DataProduct, ReducedDatum
from django.core.files.base import ContentFile

targets = Target.objects.bulk_create(
    Target(name=f'bench {n}', type='SIDEREAL', ra=n % 360, dec=(n % 180) - 90) for n in range(TARGETS))
now = timezone.now()
ReducedDatum.objects.bulk_create(
    (ReducedDatum(target=targets[n % len(targets)], data_type='photometry', timestamp=now,
                  value={'magnitude': 15 + (n % 500) / 100, 'error': 0.01, 'filter': 'r'})
     for n in range(PHOTOMETRY)), batch_size=5000)
for n in range(FILES):
    product = DataProduct.objects.create(target=targets[n % len(targets)], product_id=f'frame-{n}',
                                         data_product_type='image_file')
    product.data.save(f'frame-{n}.fits', ContentFile(os.urandom(FILE_BYTES)), save=True)
print('populated')
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--targets', type=int, default=2000)
    parser.add_argument('--photometry', type=int, default=50000)
    parser.add_argument('--gigabytes', type=float, default=2.0)
    parser.add_argument('--file-megabytes', type=float, default=4.0)
    args = parser.parse_args()
    base = os.environ.get('DATABASE_URL', '')
    if not base.startswith('postgres'):
        sys.exit('backup_vs_recipe: run under tests/with_postgres.sh (DATABASE_URL=postgres://...)')
    restic = shutil.which('restic') or shutil.which('restic', path=str(REPO / '.venv' / 'bin'))
    if not restic:
        sys.exit('backup_vs_recipe: restic not found (`make .venv/bin/restic`)')

    with tempfile.TemporaryDirectory(prefix='backup-bench-', dir=os.environ.get('BENCH_DIR')) as scratch:
        scratch = Path(scratch)
        databases = Databases(base)
        try:
            tom = tom_env(scratch / 'tom', databases.new(), scratch / 'repository', restic)
            files = int(args.gigabytes * 1e9 / (args.file_megabytes * 1e6))
            print(f'building a TOM: {args.targets} targets, {args.photometry} photometry points, '
                  f'{files} files of {args.file_megabytes:g} MB', flush=True)
            manage(tom, 'migrate', '--no-input', '-v', '0')
            manage(tom, 'shell', '--no-imports', '-c', POPULATE.replace('TARGETS', str(args.targets))
                   .replace('PHOTOMETRY', str(args.photometry)).replace('FILES', str(files))
                   .replace('FILE_BYTES', str(int(args.file_megabytes * 1e6))))
            data = folder_size(Path(tom['DATA_DIR']) / 'media')
            print(f'data products: {data / 1e9:.2f} GB', flush=True)

            ours = {}
            ours['first'], ours['first_memory'] = timed(manage_command(tom, 'backup', 'create'))
            ours['first_size'] = folder_size(scratch / 'repository')
            ours['next'], _ = timed(manage_command(tom, 'backup', 'create'))
            ours['next_added'] = folder_size(scratch / 'repository') - ours['first_size']
            fresh = tom_env(scratch / 'restored', databases.new(), scratch / 'repository', restic)
            Path(fresh['SECRET_KEY_FILE']).write_text(Path(tom['SECRET_KEY_FILE']).read_text())
            manage(fresh, 'migrate', '--no-input', '-v', '0')
            ours['restore'], _ = timed(manage_command(fresh, 'backup', 'restore', 'latest'))

            recipe = {}
            dumps = scratch / 'recipe'
            dumps.mkdir()
            backup = ['sh', '-c', f'set -e; pg_dump "$DATABASE_URL" | gzip > {dumps}/db.sql.gz; '
                                  f'tar czf {dumps}/data.tar.gz -C "$DATA_DIR" media']
            recipe['first'], recipe['first_memory'] = timed(backup, tom)
            recipe['first_size'] = folder_size(dumps)
            shutil.rmtree(dumps)
            dumps.mkdir()
            recipe['next'], _ = timed(backup, tom)
            recipe['next_added'] = folder_size(dumps)
            target = tom_env(scratch / 'recipe-restored', databases.new(), scratch / 'none', restic)
            Path(target['DATA_DIR']).mkdir(parents=True)
            restore = ['sh', '-c', f'set -e; gunzip -c {dumps}/db.sql.gz | psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" '
                                   f'>/dev/null; tar xzf {dumps}/data.tar.gz -C "$DATA_DIR"']
            recipe['restore'], _ = timed(restore, target)
        finally:
            databases.drop()

    report(ours, recipe, data)


def report(ours, recipe, data):
    print()
    print(f'{"":34}{"backup (restic)":>18}{"plain recipe":>18}')
    rows = [('first backup, time', 'first', seconds), ('first backup, size', 'first_size', gigabytes),
            ('next backup (unchanged), time', 'next', seconds), ('next backup, bytes added', 'next_added', megabytes),
            ('restore (recovery time)', 'restore', seconds), ('peak memory during a backup', 'first_memory', megabytes)]
    for label, key, show in rows:
        print(f'{label:34}{show(ours[key]):>18}{show(recipe[key]):>18}')
    print()
    print(f'data products {data / 1e9:.2f} GB')
    print(f'next backup / first backup, time:  {ours["next"] / ours["first"]:.3f}   (goal < 0.10)')
    print(f'next backup / first backup, bytes: {ours["next_added"] / ours["first_size"]:.4f}  (goal < 0.01)')
    print(f'restore / recipe restore, time:    {ours["restore"] / recipe["restore"]:.2f}    (goal <= 1.5)')
    print(f'peak memory of a backup:           {ours["first_memory"] / 1e6:.0f} MB  (goal < 300 MB)')


def seconds(value):
    return f'{value:.1f} s'


def gigabytes(value):
    return f'{value / 1e9:.2f} GB'


def megabytes(value):
    return f'{value / 1e6:.1f} MB'


class Databases:
    """Databases of their own on the benchmark's PostgreSQL server, dropped at the end."""

    def __init__(self, base):
        self.base, self.made = base, []

    def new(self):
        import psycopg

        name = f'bench_{uuid.uuid4().hex[:8]}'
        with psycopg.connect(_maintenance(self.base), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE {name}')
        self.made.append(name)
        return urlsplit(self.base)._replace(path=f'/{name}').geturl()

    def drop(self):
        import psycopg

        with psycopg.connect(_maintenance(self.base), autocommit=True) as admin:
            for name in self.made:
                admin.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


def tom_env(folder, database_url, repository, restic):
    folder.mkdir(parents=True)
    (folder / 'secret_key').write_text('benchmark-key-' + uuid.uuid4().hex + '\n')
    path = os.pathsep.join([str(Path(restic).parent), str(Path(sys.executable).parent), os.environ['PATH']])
    return {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY_FILE': str(folder / 'secret_key'),
            'DATA_DIR': str(folder / 'data'), 'DATABASE_URL': database_url, 'BACKUP_REPOSITORY': str(repository),
            'BACKUP_PASSPHRASE': 'benchmark passphrase', 'PATH': path}


def manage_command(env, *args):
    return [sys.executable, str(REPO / 'manage.py'), *args], env


def manage(env, *args):
    subprocess.run([sys.executable, str(REPO / 'manage.py'), *args], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)


def timed(command, env=None):
    """(wall seconds, peak memory of the whole process tree in bytes, as PSS) of one run."""
    if isinstance(command, tuple):
        command, env = command
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    peak = [0]
    watcher = threading.Thread(target=_watch_memory, args=(process, peak), daemon=True)
    watcher.start()
    output = process.communicate()[0]
    elapsed = time.monotonic() - started
    watcher.join()
    if process.returncode != 0:
        sys.exit(f'backup_vs_recipe: {command} failed:\n{output}')
    for line in output.splitlines():
        if line.startswith('backup:'):
            print('  ' + line, flush=True)
    return elapsed, peak[0]


def _watch_memory(process, peak):
    while process.poll() is None:
        peak[0] = max(peak[0], _tree_rss(process.pid))
        time.sleep(0.05)


def _tree_rss(pid):
    """The tree's proportional set size: a page shared by a process and its fork counts once."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f'/proc/{current}/smaps_rollup').read_text().splitlines():
                if line.startswith('Pss:'):
                    total += int(line.split()[1]) * 1024
            children = Path(f'/proc/{current}/task/{current}/children').read_text().split()
        except OSError:
            continue
        pending += [int(child) for child in children]
    return total


def folder_size(path):
    return sum(item.stat().st_size for item in Path(path).rglob('*') if item.is_file()) if Path(path).exists() else 0



def _maintenance(url):
    """The server's `postgres` database, from which databases are made and dropped."""
    return urlsplit(url)._replace(path='/postgres').geturl()


if __name__ == '__main__':
    main()
