"""What an alert stream costs and how fast it stores: a real Kafka broker (tests/kafka_broker.py)
and a throwaway PostgreSQL, the cron program (`jobs cron`) running one stream whose handler is
the shipped save_alert. Measured:

  - 10,000 alerts produced at once: alerts per second stored (first produce to last row), and
    the latency from each alert's Kafka timestamp to its row's stored_at (p50, p99), which a
    backlog makes long; then 2,000 at 200 a second, as a live stream brings them;
  - a stream's process killed (SIGKILL) with alerts waiting: seconds to the next stored alert;
  - memory (RSS) of the stream's process;
  - a connected, quiet stream: its process's CPU and the database's transactions per second.

    .venv/bin/python tests/benchmarks/streams.py [--alerts N] [--idle SECONDS]

Run as root (PostgreSQL's initdb runs as its postgres user) or as any user otherwise.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.conftest import tool, wait_for  # noqa: E402
from tests.kafka_broker import KafkaBroker, declaration  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402

TOPIC = 'bench.alerts'
TICKS = os.sysconf('SC_CLK_TCK')


def sql(server, statement):
    import psycopg

    with psycopg.connect(server.url('tom'), autocommit=True) as connection:
        return connection.execute(statement).fetchall()


def stream_pid():
    found = subprocess.run(['pgrep', '-f', 'manage.py streams listen bench$'], capture_output=True, text=True)
    pids = [int(pid) for pid in found.stdout.split()]
    return pids[0] if pids else None


def cpu_seconds(pid):
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--alerts', type=int, default=10000)
    parser.add_argument('--idle', type=float, default=60.0)
    parser.add_argument('--paced', type=int, default=2000, help='alerts produced at --rate, for steady latency')
    parser.add_argument('--rate', type=float, default=200.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='streams-bench-'))
    work.chmod(0o755)  # PostgreSQL's own user reaches its folder
    (work / 'pg').mkdir()
    (work / 'kafka').mkdir()
    database = PostgresServer(work / 'pg').start()
    broker = KafkaBroker(work / 'kafka').start()
    cron = None
    try:
        database.sql('CREATE DATABASE tom')
        broker.create_topic(TOPIC)
        (work / 'crontab').write_text('@yearly python manage.py jobs run --no-catch-up clearsessions\n')
        (work / 'streams.toml').write_text(declaration(broker.bootstrap, TOPIC, name='bench'))
        path = os.pathsep.join([str(Path(sys.executable).parent), str(Path(tool('supercronic')).parent),
                                os.environ['PATH']])
        env = {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': 'benchmark',
               'DATABASE_URL': database.url('tom'), 'DATA_DIR': str(work / 'data'), 'PATH': path,
               'CRONTAB': str(work / 'crontab'), 'STREAMS_FILE': str(work / 'streams.toml'),
               'CRON_HEALTH_FILE': str(work / 'health.json'), 'PYTHONUNBUFFERED': '1'}
        subprocess.run([sys.executable, 'manage.py', 'migrate', '--no-input'], cwd=REPO, env=env, check=True,
                       capture_output=True)
        with (work / 'cron.log').open('w') as log:
            cron = subprocess.Popen([sys.executable, 'manage.py', 'jobs', 'cron'], cwd=REPO, env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
        wait_for('the stream to be given its partitions', lambda: 'stream bench: reading' in (
            work / 'cron.log').read_text(), seconds=120, every=0.2)
        count = 'SELECT count(*) FROM myapp_streamalert'

        # Throughput and latency.
        producer = broker.producer()
        started = time.time()
        for n in range(args.alerts):
            producer.produce(TOPIC, value=f'{{"alert": {n}}}'.encode())
            producer.poll(0)
        producer.flush(60)
        wait_for(f'{args.alerts} alerts stored', lambda: sql(database, count)[0][0] >= args.alerts,
                 seconds=600, every=0.5)
        rows = sql(database, 'SELECT extract(epoch FROM stored_at - produced_at), extract(epoch FROM stored_at) '
                             'FROM myapp_streamalert')
        latencies = sorted(row[0] for row in rows)
        last = max(row[1] for row in rows)
        rate = args.alerts / (float(last) - started)
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[int(len(latencies) * 0.99)]

        # Latency at a steady rate (alerts as a live stream brings them, not a backlog).
        paced = 'SELECT extract(epoch FROM stored_at - produced_at) FROM myapp_streamalert WHERE value LIKE \'paced%%\''
        for n in range(args.paced):
            producer.produce(TOPIC, value=f'paced {n}'.encode())
            producer.poll(0)
            time.sleep(1 / args.rate)
        producer.flush(60)
        wait_for('the paced alerts', lambda: len(sql(database, paced)) >= args.paced, seconds=120, every=0.5)
        steady = sorted(row[0] for row in sql(database, paced))
        stored = args.alerts + args.paced

        # A killed stream: its process SIGKILLed, an alert produced at once.
        pid = stream_pid()
        memory = rss_mib(pid)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        broker.produce(TOPIC, [b'after the kill'])
        wait_for('the alert after the kill', lambda: sql(database, count)[0][0] >= stored + 1, seconds=120,
                 every=0.1)
        recovered = time.monotonic() - killed

        # Idle: connected, nothing to read.
        wait_for('the restarted stream', lambda: 'stream bench: reading' in (work / 'cron.log').read_text()
                 .rsplit('ended (killed by SIGKILL', 1)[-1], seconds=60, every=0.2)
        time.sleep(5)
        pid = stream_pid()
        xacts = 'SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = \'tom\''
        cpu_before, xact_before, at = cpu_seconds(pid), sql(database, xacts)[0][0], time.monotonic()
        time.sleep(args.idle)
        idle_cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - at)
        idle_xacts = (sql(database, xacts)[0][0] - xact_before - 2) / (time.monotonic() - at)

        print(f'{args.alerts} alerts: {rate:.0f} alerts/s stored; produce to row p50 {p50 * 1000:.0f} ms, '
              f'p99 {p99 * 1000:.0f} ms')
        print(f'{args.paced} alerts at {args.rate:g}/s: produce to row p50 {steady[len(steady) // 2] * 1000:.0f} ms, '
              f'p99 {steady[int(len(steady) * 0.99)] * 1000:.0f} ms')
        print(f'stream process killed with an alert waiting: stored {recovered:.1f} s later')
        print(f'stream process memory: {memory:.0f} MiB resident')
        print(f'idle, connected: {idle_cpu * 100:.2f} % of a core, {idle_xacts:.2f} database transactions/s '
              f'(over {args.idle:.0f} s)')
    finally:
        if cron is not None:
            cron.terminate()
            cron.wait(timeout=60)
        broker.stop()
        database.stop()


if __name__ == '__main__':
    main()
