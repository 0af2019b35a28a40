"""What running the TOM on real Kubernetes nodes costs in time and memory: the control plane
and two nodes brought up, the image imported, `helm install` to Ready, and CronJob ticks from
the scheduled minute to their pod's completion, with the job's own time beside the pod's
overhead; then the memory of each pod and of each node's kubelet and containerd.

    .venv/bin/python tests/benchmarks/kubernetes_nodes.py [--ticks N] [--cold]

As root, with a Docker engine (the image is built from this checkout, as the tests build it).
--cold first builds the Kubernetes binaries and fetches the node parts into an empty cache
folder (about 12 minutes) and reports that time; otherwise the user's cache is used.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.k8s import tom  # noqa: E402  (after the path is set)

CRONTAB = '* * * * * python manage.py jobs run --timeout 2m clearsessions\n'
CRONJOB = f'{tom.RELEASE}-mytom-clearsessions'


def parse_time(text):
    return datetime.fromisoformat(text.replace('Z', '+00:00'))


def ticks(world, count):
    """(scheduled, pod started, pod finished, job's own seconds) of `count` completed ticks."""
    done = {}
    deadline = time.monotonic() + 90 * (count + 1)
    while len(done) < count and time.monotonic() < deadline:
        time.sleep(5)
        for pod in world.cluster.get('pods', '-l', 'app.kubernetes.io/component=job')['items']:
            job = pod['metadata']['labels'].get('batch.kubernetes.io/job-name', '')
            state = (pod['status'].get('containerStatuses') or [{}])[0].get('state', {}).get('terminated')
            if not job.startswith(CRONJOB) or not state or job in done:
                continue
            scheduled = datetime.fromtimestamp(int(job.rsplit('-', 1)[1]) * 60, UTC)
            own = world.sql("SELECT duration FROM myapp_jobrun WHERE name = 'clearsessions' AND scheduled_for = %s",
                            scheduled)
            done[job] = (scheduled, parse_time(pod['status']['startTime']), parse_time(state['finishedAt']),
                         own[0][0] if own else None)
    return sorted(done.values())


def memory(world):
    """{what: MiB}: each running pod's cgroup, and the node programs' resident memory."""
    found = {}
    pods = [pod for pod in world.cluster.get('pods')['items'] if pod['status']['phase'] == 'Running']
    for node in world.cluster.nodes:
        for pod in pods:
            uid = pod['metadata']['uid']
            for usage in Path('/sys/fs/cgroup/memory', node.cgroup).rglob(f'pod{uid}/memory.usage_in_bytes'):
                found[f'pod {pod["metadata"]["name"]}'] = int(usage.read_text()) / 2**20
        for name in ('kubelet', 'containerd'):
            process = node.processes.get(name)
            status = Path(f'/proc/{process.pid}/status').read_text()
            rss = next(line for line in status.splitlines() if line.startswith('VmRSS'))
            found[f'{node.name} {name}'] = int(rss.split()[1]) / 1024
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ticks', type=int, default=3)
    parser.add_argument('--cold', action='store_true')
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix='mytom-k8s-bench-'))
    if options.cold:
        os.environ['XDG_CACHE_HOME'] = str(directory / 'cache')
        started = time.monotonic()
        tom.tool('build.sh')
        tom.tool('node-parts.sh')
        print(f'cold build of the binaries and node parts: {time.monotonic() - started:.0f} s')
    started = time.monotonic()
    with tom.image(directory) as (name, archive):
        print(f'image built and saved: {time.monotonic() - started:.0f} s')
        with tom.world(directory, name, archive) as world:
            world.install(directory, CRONTAB)
            for what, seconds in world.timings.items():
                print(f'{what}: {seconds:.0f} s')
            # Kubernetes records pod times to the second: the overhead is +-1 s.
            print('\nCronJob ticks (scheduled minute -> pod start -> pod done; the job\'s own time):')
            overheads = []
            for scheduled, pod_start, pod_done, own in ticks(world, options.ticks):
                total = (pod_done - scheduled).total_seconds()
                own = own or 0.0
                overheads.append(total - own)
                print(f'  {scheduled:%H:%M}  pod started +{(pod_start - scheduled).total_seconds():.1f} s, '
                      f'done +{total:.1f} s, job {own:.1f} s, overhead {total - own:.1f} s')
            if overheads:
                print(f'  overhead of a tick (median): {sorted(overheads)[len(overheads) // 2]:.1f} s')
            print('\nMemory (MiB):')
            for what, mib in sorted(memory(world).items()):
                print(f'  {what}: {mib:.0f}')
    subprocess.run(['rm', '-rf', str(directory)])


if __name__ == '__main__':
    main()
