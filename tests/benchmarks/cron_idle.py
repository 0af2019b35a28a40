"""What the cron container costs while it waits: the stack brought up on the real engine with
the default crontab and the default health interval, left idle, its cron container's CPU and
memory read from the engine, and the database's transactions meanwhile (PostgreSQL's
pg_stat_database: every query Django makes outside a transaction is one; the web container's
health check makes one every 10 s). Today's design beside an earlier one (by default the one
whose cron program polled the database every second and woke twice a second), both at once,
over the same window, between two ticks of the crontab (jobs running is not idle).

    .venv/bin/python tests/benchmarks/cron_idle.py [--baseline REV] [--seconds N]

Needs a Docker engine; base images and the supercronic download come from PYTHON_IMAGE,
POSTGRES_IMAGE, SUPERCRONIC_URL and SUPERCRONIC_SHA256 where no registry is reachable (as in
the end-to-end tests). Also prints the cost of one health check, run 20 times in each cron
container (median wall and CPU time of the check's process).
"""
import argparse
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from croniter import croniter

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.conftest import compose_binary, copy_checkout, free_port  # noqa: E402

# The last commit whose cron program polled for Run now requests and tasks every second.
BASELINE = '1e87016'
SAMPLE_EVERY = 10
CHECK_COST = ('import resource, statistics, subprocess, sys, time; walls, cpus = [], []\n'
              'for _ in range(20):\n'
              '    before = resource.getrusage(resource.RUSAGE_CHILDREN); started = time.perf_counter()\n'
              '    subprocess.run(sys.argv[1:], capture_output=True)\n'
              '    walls.append(time.perf_counter() - started); after = resource.getrusage(resource.RUSAGE_CHILDREN)\n'
              '    cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)\n'
              'print(statistics.median(walls), statistics.median(cpus))')


class Engine(http.client.HTTPConnection):
    """The Docker engine's API, on its socket."""

    def __init__(self):
        super().__init__('localhost')

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect('/var/run/docker.sock')

    def stats(self, container):
        self.request('GET', f'/containers/{container}/stats?stream=false&one-shot=true')
        stats = json.loads(self.getresponse().read())
        memory = stats['memory_stats']
        inactive = memory.get('stats', {}).get('inactive_file', memory.get('stats', {}).get('total_inactive_file', 0))
        return stats['cpu_stats']['cpu_usage']['total_usage'], memory['usage'] - inactive


class Stack:
    def __init__(self, name, tree):
        self.name, self.tree = name, tree
        self.base = [compose_binary(), '-p', f'cron-idle-{name}', '-f', 'compose.yaml']
        self.env = {**__import__('os').environ, 'TOM_IMAGE': f'cron-idle-{name}:latest', 'WEB_PORT': str(free_port())}

    def compose(self, *args, check=True):
        return subprocess.run([*self.base, *args], cwd=self.tree, env=self.env, check=check, capture_output=True,
                              text=True)

    def cron(self):
        return self.compose('ps', '-q', 'cron').stdout.split()[0]

    def transactions(self):
        """Transactions the TOM's database has seen (committed or rolled back)."""
        sql = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'tom'"
        return int(self.compose('exec', '-T', 'db', 'psql', '-U', 'tom', '-d', 'tom', '-tAc', sql).stdout)

    def health_check_cost(self, *check):
        out = subprocess.run(['docker', 'exec', self.cron(), 'python3', '-c', CHECK_COST, *check],
                             capture_output=True, text=True, check=True).stdout.split()
        return float(out[0]), float(out[1])


def export(revision, into):
    """The tree of revision (or of the working tree, for None) in the folder into."""
    into.mkdir()
    if not revision:
        return copy_checkout(into)
    archive = subprocess.run(['git', 'archive', revision], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(['tar', '-x', '-C', str(into)], input=archive, check=True)
    return into


def quiet_window(seconds, not_before):
    """The first span of seconds from not_before on with no tick of the default crontab."""
    schedules = [' '.join(line.split()[:5]) for line in (REPO / 'crontab').read_text().splitlines()
                 if line.strip() and not line.startswith('#')]
    start = not_before
    while True:
        following = min(croniter(s, start).get_next(float) for s in schedules)
        if following - start >= seconds + 5:  # a job starting at its tick is not idle
            return start
        start = following + 20  # past the start-up of the job of that tick


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--baseline', default=BASELINE, help=f'the earlier design (a git revision, default {BASELINE})')
    parser.add_argument('--seconds', type=int, default=300, help='how long to measure (default 300)')
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='cron-idle-'))
    work.chmod(0o755)
    stacks = [Stack('before', export(options.baseline, work / 'before')), Stack('now', export(None, work / 'now'))]
    try:
        for stack in stacks:
            stack.compose('build')
            stack.compose('up', '--wait', '--wait-timeout', '300')
        engine = Engine()
        start = quiet_window(options.seconds, time.time() + 60)
        print(f'measuring from {datetime.fromtimestamp(start, UTC):%H:%M:%S} UTC for {options.seconds} s '
              f'(no tick of the crontab in between)', flush=True)
        time.sleep(max(0.0, start - time.time()))
        containers = {stack.name: stack.cron() for stack in stacks}
        first = {name: (time.monotonic(), *engine.stats(c)) for name, c in containers.items()}
        transactions = {stack.name: stack.transactions() for stack in stacks}
        memory = {name: [] for name in containers}
        while time.monotonic() - first[stacks[0].name][0] < options.seconds:
            time.sleep(SAMPLE_EVERY)
            for name, container in containers.items():
                memory[name].append(engine.stats(container)[1])
        last = {name: (time.monotonic(), *engine.stats(c)) for name, c in containers.items()}
        transactions = {stack.name: stack.transactions() - transactions[stack.name] for stack in stacks}
        check = ('python3', '-I', '-S', '/app/docker/healthcheck.py', 'cron')
        checks = {stack.name: stack.health_check_cost(*check) for stack in stacks}
    finally:
        for stack in stacks:
            stack.compose('down', '-v', '--timeout', '30', check=False)
            subprocess.run(['docker', 'image', 'rm', '-f', stack.env['TOM_IMAGE']], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f'{"cron container, idle":<24}{"CPU (share of a core)":>24}{"memory (mean)":>16}{"one health check":>28}'
          f'{"database transactions":>24}')
    for stack in stacks:
        name = stack.name
        cpu = (last[name][1] - first[name][1]) / 1e9 / (last[name][0] - first[name][0])
        wall, check_cpu = checks[name]
        label = f'{name} ({options.baseline})' if name == 'before' else 'now (jobs cron)'
        seconds = last[name][0] - first[name][0]
        print(f'{label:<24}{cpu * 100:>23.2f}%{statistics.mean(memory[name]) / 2**20:>12.0f} MiB'
              f'{wall * 1000:>14.0f} ms wall {check_cpu * 1000:>5.0f} ms CPU'
              f'{transactions[name] / seconds:>17.2f} per s')


if __name__ == '__main__':
    main()
