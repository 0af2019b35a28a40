"""save_data against the recipe of TOM Toolkit's "Automating tasks" guide, side by side.

    .venv/bin/python tests/benchmarks/save_data_vs_recipe.py [--records 1000] [--frames 3] [--latency 0.05]

Builds N finished observation records with M frames each on a throwaway SQLite database,
serves them from the fake LCO archive on 127.0.0.1 answering every request after LATENCY
seconds (over keep-alive connections, as real archives allow), then runs, each as its own
process as cron would:
  1. the first sync: (a) the guide's recipe, (b) `manage.py save_data`, each from the same
     empty start;
  2. the next run, everything stored and settled, for both;
  3. the no-op start-up: `manage.py save_data` with nothing to do against a bare
     `django.setup()` of the same settings (medians of --startup-runs each);
  4. peak memory of a first sync at N = 50 and N = 5000 (--memory-records; no added latency:
     memory depends on N, not on waiting).
and prints times, ratios, archive requests made, and peak memory. A script, not a test.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.fake_lco import FakeLCO  # noqa: E402

# The guide's loop, with the one change that lets it reach LCO through the default facility
# (LCORedirect has no save_data_products; it wraps an LCO facility that does).
RECIPE = '''
import django
django.setup()
from tom_observations.facility import get_service_class
from tom_observations.models import ObservationRecord

for record in ObservationRecord.objects.all():
    if record.terminal:
        facility = get_service_class(record.facility)()
        facility = getattr(facility, 'lco_facility', facility)  # the one change
        facility.save_data_products(record)
'''
SETUP = 'import django; django.setup()'
FRAME_BYTES = 8192


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=1000)
    parser.add_argument('--frames', type=int, default=3)
    parser.add_argument('--latency', type=float, default=0.05, help='seconds before each answer')
    parser.add_argument('--startup-runs', type=int, default=10)
    parser.add_argument('--memory-records', type=int, nargs=2, default=[50, 5000], metavar=('SMALL', 'LARGE'))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix='save-data-bench-') as scratch:
        scratch = Path(scratch)
        lco = FakeLCO(page_size=1000, latency=args.latency, keep_alive=True).start()
        try:
            template = migrated_database(scratch)
            print(f'{args.records} records x {args.frames} frames, {args.latency * 1000:.0f} ms per request, '
                  f'{os.cpu_count()} CPUs')
            results = {}
            for name, first_run in (('recipe', recipe), ('save_data', save_data)):
                tom = Tom(scratch / name, template, lco)
                tom.add_records(lco, args.records, args.frames, first_id=1)
                results[name] = [first_run(tom), first_run(tom)]
            report_runs(results)
            report_startup(Tom(scratch / 'save_data', template, lco), args.startup_runs)
            lco.latency = 0.0
            report_memory(scratch, template, lco, args.memory_records, args.frames)
        finally:
            lco.stop()


class Tom:
    """One TOM's DATA_DIR and database, copied from a migrated template."""

    def __init__(self, directory, template, lco):
        self.directory = directory
        database = directory / 'db.sqlite3'
        if not database.exists():
            directory.mkdir(parents=True)
            shutil.copy(template, database)
        self.lco = lco
        self.env = {**settings_env(directory, database), 'PYTHONPATH': str(REPO),
                    'LCO_PORTAL_URL': lco.url, 'LCO_ARCHIVE_URL': lco.url, 'LCO_API_KEY': lco.api_key}

    def add_records(self, lco, count, frames, first_id):
        for observation_id in range(first_id, first_id + count):
            if observation_id not in lco.requests:
                lco.add_request(observation_id, frames=frames, size=FRAME_BYTES)
        code = (
            'import django; django.setup()\n'
            'from datetime import timedelta\n'
            'from django.utils import timezone\n'
            'from tom_observations.models import ObservationRecord\n'
            'from tom_targets.models import Target\n'
            f'ids = range({first_id}, {first_id + count})\n'
            'targets = Target.objects.bulk_create(Target(name=f"target {i}", type="SIDEREAL", ra=1, dec=2) '
            'for i in ids[::10])\n'
            'ended = timezone.now() - timedelta(days=30)\n'
            'ObservationRecord.objects.bulk_create(ObservationRecord(target=targets[n // 10], facility="LCORedirect", '
            'observation_id=str(i), status="COMPLETED", parameters={}, scheduled_end=ended) '
            'for n, i in enumerate(ids))\n'
        )
        self.python(code)

    def python(self, code):
        subprocess.run([sys.executable, '-c', code], env=self.env, cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def timed(self, argv):
        """(wall seconds, peak RSS in MB, archive requests) of one process."""
        requests_before = len(self.lco.hits)
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=self.env, cwd=REPO, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        errors = process.stderr.read().decode()
        if process.returncode != 0:
            sys.exit(f'{" ".join(argv[1:3])} failed ({process.returncode}):\n{errors[-2000:]}')
        return seconds, usage.ru_maxrss / 1024, len(self.lco.hits) - requests_before


def recipe(tom):
    return tom.timed([sys.executable, '-c', RECIPE])


def save_data(tom):
    return tom.timed([sys.executable, 'manage.py', 'save_data'])


def migrated_database(scratch):
    print('migrating a template database ...', flush=True)
    directory = scratch / 'template'
    directory.mkdir()
    env = settings_env(directory, directory / 'db.sqlite3')
    subprocess.run([sys.executable, 'manage.py', 'migrate', '-v', '0'], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return directory / 'db.sqlite3'


def settings_env(directory, database):
    """The environment of a TOM whose DATA_DIR is directory, on the SQLite file database."""
    return {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': 'benchmark-only',
            'DATA_DIR': str(directory), 'DATABASE_URL': f'sqlite:///{database}'}


def report_runs(results):
    print(f'{"":<22}{"recipe":>30}{"save_data":>30}{"ratio":>8}')
    for index, label in enumerate(('first sync', 'next run (all stored)')):
        (r_s, r_mb, r_req), (s_s, s_mb, s_req) = results['recipe'][index], results['save_data'][index]
        print(f'{label:<22}{r_s:>8.1f} s {r_req:>6} req {r_mb:>5.0f} MB'
              f'{s_s:>8.1f} s {s_req:>6} req {s_mb:>5.0f} MB{r_s / s_s:>7.1f}x')


def report_startup(tom, runs):
    setup, noop = [], []
    for _ in range(runs):  # alternating, so that the machine's drift hits both alike
        setup.append(tom.timed([sys.executable, '-c', SETUP])[0])
        noop.append(save_data(tom)[0])
    setup_s, noop_s = statistics.median(setup), statistics.median(noop)
    print(f'no-op start-up (median of {runs}): django.setup() {setup_s:.2f} s, save_data {noop_s:.2f} s, '
          f'{noop_s / setup_s:.2f}x')


def report_memory(scratch, template, lco, sizes, frames):
    peaks = []
    for size in sizes:
        tom = Tom(scratch / f'memory-{size}', template, lco)
        tom.add_records(lco, size, frames, first_id=100_000 * (len(peaks) + 1))
        seconds, peak, requests = save_data(tom)
        peaks.append(peak)
        print(f'first sync of {size} records: {seconds:.1f} s, {requests} requests, peak memory {peak:.0f} MB')
    print(f'peak memory, {sizes[1]} records vs {sizes[0]}: {peaks[1] - peaks[0]:+.0f} MB')


if __name__ == '__main__':
    main()
