"""What the job runtime costs: a no-op job run directly and through `jobs run`, and one
`jobs check` (the cron container's health check), each as its own process, as cron runs it.

    .venv/bin/python tests/benchmarks/job_overhead.py [--runs N]

Prints the median wall time and CPU time of each, and the ratio of `jobs run` to direct.
Uses a throwaway SQLite database under a temporary DATA_DIR.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A no-op job: no expired sessions to clear, and no system checks (as our jobs skip them).
NO_OP = ['prune_job_history']


def measure(env, args, runs):
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / 'manage.py'), *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, 'DATA_DIR': data, 'SECRET_KEY': 'benchmark-only', 'DATABASE_URL': '',
               'DJANGO_SETTINGS_MODULE': 'mytom.settings'}
        env.pop('DATABASE_URL')
        subprocess.run([sys.executable, str(REPO / 'manage.py'), 'migrate', '-v', '0'], env=env, check=True)
        subprocess.run([sys.executable, str(REPO / 'manage.py'), 'jobs', 'loaded', str(REPO / 'crontab')],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        direct = measure(env, NO_OP, runs)
        through = measure(env, ['jobs', 'run', *NO_OP], runs)
        check = measure(env, ['jobs', 'check'], runs)
    print(f'{runs} runs each, medians (wall s / CPU s):')
    print(f'  manage.py {" ".join(NO_OP):<28} {direct[0]:.2f} / {direct[1]:.2f}')
    print(f'  manage.py jobs run {" ".join(NO_OP):<19} {through[0]:.2f} / {through[1]:.2f}')
    print(f'  manage.py jobs check{"":<19} {check[0]:.2f} / {check[1]:.2f}')
    print(f'jobs run / direct: {through[0] / direct[0]:.2f} x wall, {through[1] / direct[1]:.2f} x CPU')
    print(f'jobs check every minute: {check[1] / 60 * 100:.1f} % of one core')


if __name__ == '__main__':
    main()
