"""The Helm chart under deploy/ and its CronJobs from ./crontab: the export and its refusals,
the drift between the committed chart and ./crontab, `helm lint`, and on a real control plane
on 127.0.0.1 (tests/k8s/cluster.py): server-side validation of every manifest, an install
that reaches Running web and task worker pods after its migration hook Job, and a CronJob from a crontab
line that gets its Job at the next minute and is refused a second one while it runs."""
import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime

import pytest
import yaml

from tests.conftest import REPO, run_job
from tests.k8s.cluster import Cluster

CHART = REPO / 'deploy' / 'mytom'
VALUES = ['--set', 'secrets.SECRET_KEY=tests-only', '--set', 'secrets.DATABASE_URL=postgres://tom@db:5432/tom',
          '--set', 'image.repository=mytom', '--set', 'image.tag=tests', '--set', 'secrets.BACKUP_PASSPHRASE=tests',
          '--set', 'config.ALLOWED_HOSTS=tom.example.org']


def export(export_env, crontab_text, tmp_path):
    path = tmp_path / 'crontab'
    path.write_text(crontab_text)
    return run_job(export_env, 'jobs', 'export', '--kubernetes', '--crontab', str(path))


@pytest.fixture
def export_env(tmp_path):
    return {**os.environ, 'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'SECRET_KEY': 'tests-only',
            'DATA_DIR': str(tmp_path / 'data')}


def test_the_chart_runs_the_jobs_of_the_crontab(export_env):
    job = run_job(export_env, 'jobs', 'export', '--kubernetes')

    assert job.returncode == 0, job.stderr
    assert (CHART / 'crontab-jobs.yaml').read_text() == job.stdout, (
        'deploy/mytom/crontab-jobs.yaml disagrees with ./crontab: run '
        '`python manage.py jobs export --kubernetes --output deploy/mytom/crontab-jobs.yaml`')


@pytest.mark.parametrize('schedule, why', [
    ('*/10 * * * * * *', 'not 7 (seconds and a year)'),
    ('0 3 * * * 2027', 'not 6 (a year)'),
])
def test_export_refuses_schedules_kubernetes_cannot_express(export_env, tmp_path, schedule, why):
    line = f'{schedule} python manage.py jobs run clearsessions'

    crontab = f'# housekeeping\n17 3 * * * python manage.py jobs run prune_job_history\n{line}\n'
    job = export(export_env, crontab, tmp_path)

    assert job.returncode == 1
    assert job.stderr.strip().splitlines() == [
        f'CommandError: {tmp_path / "crontab"} line 3: Kubernetes CronJobs take five fields or an @shorthand, '
        f'{why}: {line}']


@pytest.mark.parametrize('line, reason', [
    ('*/5 * * * * python manage.py clearsessions', 'does not run through'),
    ('*/5 * * * * python manage.py jobs run no_such_command', "no management command 'no_such_command'"),
])
def test_export_refuses_lines_the_runtime_would_not_run(export_env, tmp_path, line, reason):
    job = export(export_env, line + '\n', tmp_path)

    assert job.returncode == 1
    assert reason in job.stderr and 'Traceback' not in job.stderr
    assert len(job.stderr.strip().splitlines()) == 1


def test_export_gives_each_job_its_deadlines_policy_and_time_zone(export_env, tmp_path):
    job = export(export_env, 'CRON_TZ=America/Santiago\nLOG_LEVEL=WARNING\n'
                      '*/10 * * * * python manage.py jobs run --timeout 5m clearsessions\n'
                      '@daily python manage.py jobs run --no-catch-up --timeout 1h save_data --all\n', tmp_path)

    assert job.returncode == 0, job.stderr
    exported = yaml.safe_load(job.stdout)
    assert exported['timeZone'] == 'America/Santiago'
    assert exported['environment'] == {'LOG_LEVEL': 'WARNING'}  # as supercronic passes it to each job
    every_ten, daily = exported['jobs']
    assert every_ten == {'name': 'clearsessions', 'job': 'clearsessions', 'schedule': '*/10 * * * *',
                         'command': ['python', 'manage.py', 'jobs', 'run', '--timeout', '5m', 'clearsessions'],
                         'startingDeadlineSeconds': 600, 'activeDeadlineSeconds': 300 + 10 + 60}
    assert daily['name'] == 'save-data-all' and daily['schedule'] == '@daily'
    assert daily['startingDeadlineSeconds'] == 60  # --no-catch-up: on time or not at all
    assert daily['activeDeadlineSeconds'] == 3600 + 10 + 60


# --- with Helm and a control plane --------------------------------------------------------

@pytest.fixture(scope='module')
def tools():
    built = subprocess.run([str(REPO / 'tests' / 'k8s' / 'build.sh')], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f'tests/k8s/build.sh failed:\n{built.stderr[-3000:]}')
    return built.stdout.strip()


@pytest.fixture(scope='module')
def cluster(tools, tmp_path_factory):
    cluster = Cluster(tools, tmp_path_factory.mktemp('cluster'))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.mark.kubernetes
def test_helm_lint_is_clean(tools):
    lint = subprocess.run([f'{tools}/helm', 'lint', '--strict', str(CHART), *VALUES], capture_output=True, text=True)

    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert '0 chart(s) failed' in lint.stdout


@pytest.mark.kubernetes
def test_the_worker_deployment_takes_its_replicas_and_concurrency_from_values(tools):
    def worker(*values):
        rendered = subprocess.run([f'{tools}/helm', 'template', 'tom', str(CHART), *VALUES, *values],
                                  capture_output=True, text=True, check=True).stdout
        found = [doc for doc in yaml.safe_load_all(rendered) if doc and doc['metadata']['name'] == 'tom-mytom-worker']
        return found[0] if found else None

    scaled = worker('--set', 'worker.replicas=3', '--set', 'worker.concurrency=4')
    assert scaled['kind'] == 'Deployment' and scaled['spec']['replicas'] == 3
    env = scaled['spec']['template']['spec']['containers'][0]['env']
    assert {'name': 'TASKS_CONCURRENCY', 'value': '4'} in env
    assert worker('--set', 'worker.enabled=false') is None


@pytest.mark.kubernetes
def test_pods_get_no_service_account_token_and_the_tom_answers_only_its_own_host_names(tools):
    def template(*values):
        return subprocess.run([f'{tools}/helm', 'template', 'tom', str(CHART), *values], capture_output=True, text=True)

    rendered = [doc for doc in yaml.safe_load_all(template(*VALUES).stdout) if doc]
    pods = [doc['spec']['template']['spec'] if doc['kind'] != 'CronJob' else
            doc['spec']['jobTemplate']['spec']['template']['spec']
            for doc in rendered if doc['kind'] in ('Deployment', 'Job', 'CronJob')]
    config = next(doc for doc in rendered if doc['metadata']['name'] == 'tom-mytom-config')
    assert pods and all(pod['automountServiceAccountToken'] is False for pod in pods)
    assert config['data']['ALLOWED_HOSTS'] == 'tom.example.org'

    without = VALUES[:-2]  # VALUES without its last --set, the allowed hosts
    assert VALUES[-1].startswith('config.ALLOWED_HOSTS=')
    refused = template(*without)
    assert refused.returncode != 0 and 'config.ALLOWED_HOSTS is required' in refused.stderr
    ingress = template(*without, '--set', 'ingress.enabled=true', '--set', 'ingress.host=tom.example.net')
    assert 'ALLOWED_HOSTS: "tom.example.net"' in ingress.stdout


@pytest.mark.kubernetes
def test_backups_need_one_passphrase_for_every_pod_or_are_turned_off(tools):
    def template(*values):
        return subprocess.run([f'{tools}/helm', 'template', 'tom', str(CHART), *values], capture_output=True, text=True)

    without = [arg for pair in zip(VALUES[::2], VALUES[1::2], strict=True)
               if not pair[1].startswith('secrets.BACKUP_PASSPHRASE')
               for arg in pair]
    assert len(without) == len(VALUES) - 2
    refused = template(*without)
    assert refused.returncode != 0
    assert 'secrets.BACKUP_PASSPHRASE is required for backups' in refused.stderr

    # Turned off: no backup CronJobs, and the migration hook takes no snapshot.
    off = [doc for doc in yaml.safe_load_all(template(*without, '--set', 'backups.enabled=false').stdout) if doc]
    names = {doc['metadata']['name'] for doc in off}
    assert 'tom-mytom-save-data' in names and not {'tom-mytom-backup', 'tom-mytom-backup-verify'} & names
    migrate = next(doc for doc in off if doc['metadata']['name'] == 'tom-mytom-migrate')
    assert 'before-migrate' not in migrate['spec']['template']['spec']['containers'][0]['args'][0]
    # With an existingSecret the chart cannot see its keys: the operator's Secret holds it.
    assert template(*without, '--set', 'existingSecret=tom-secrets').returncode == 0


@pytest.mark.kubernetes
def test_job_pods_know_their_cronjob_and_job_and_web_replicas_spread_over_nodes(tools):
    rendered = subprocess.run([f'{tools}/helm', 'template', 'tom', str(CHART), *VALUES], capture_output=True,
                              text=True, check=True).stdout
    docs = {(doc['kind'], doc['metadata']['name']): doc for doc in yaml.safe_load_all(rendered) if doc}
    job = docs['CronJob', 'tom-mytom-save-data']['spec']['jobTemplate']['spec']['template']['spec']
    env = {e['name']: e for e in job['containers'][0]['env']}
    assert env['TOM_JOBS_CRONJOB']['value'] == 'tom-mytom-save-data'
    assert env['TOM_JOBS_KUBERNETES_JOB']['valueFrom']['fieldRef']['fieldPath'] == \
        "metadata.labels['batch.kubernetes.io/job-name']"
    spread, = docs['Deployment', 'tom-mytom-web']['spec']['template']['spec']['topologySpreadConstraints']
    assert spread['topologyKey'] == 'kubernetes.io/hostname' and spread['whenUnsatisfiable'] == 'ScheduleAnyway'


@pytest.mark.kubernetes
def test_the_worker_runs_the_streams_declared_and_every_pod_reads_the_same_declaration(tools):
    rendered = subprocess.run([f'{tools}/helm', 'template', 'tom', str(CHART), *VALUES,
                               '--set-file', f'streams.declaration={REPO / "streams.toml"}'],
                              capture_output=True, text=True, check=True).stdout
    docs = {(doc['kind'], doc['metadata']['name']): doc for doc in yaml.safe_load_all(rendered) if doc}
    assert docs['ConfigMap', 'tom-mytom-streams']['data']['streams.toml'] == (REPO / 'streams.toml').read_text()
    assert docs['ConfigMap', 'tom-mytom-config']['data']['STREAMS_FILE'] == '/etc/tom/streams/streams.toml'
    worker = docs['Deployment', 'tom-mytom-worker']['spec']['template']['spec']
    assert {'name': 'streams', 'configMap': {'name': 'tom-mytom-streams'}} in worker['volumes']
    mounts = {mount['name']: mount for mount in worker['containers'][0]['volumeMounts']}
    assert mounts['streams'] == {'name': 'streams', 'mountPath': '/etc/tom/streams', 'readOnly': True}
    assert worker['containers'][0]['args'] == ['python3', 'manage.py', 'tasks', 'work']


@pytest.mark.kubernetes
def test_every_manifest_is_accepted_by_the_api_server_and_a_broken_one_is_not(cluster):
    rendered = cluster.helm('template', 'dry', str(CHART), *VALUES, '--set', 'ingress.enabled=true').stdout
    kinds = sorted({doc['kind'] for doc in yaml.safe_load_all(rendered) if doc})
    assert kinds == ['ConfigMap', 'CronJob', 'Deployment', 'Ingress', 'Job', 'Secret', 'Service']

    accepted = cluster.kubectl('apply', '--dry-run=server', '-f', '-', input=rendered, check=False)
    assert accepted.returncode == 0, accepted.stderr

    broken = rendered.replace('concurrencyPolicy: Forbid', 'concurrencyPolicy: Sometimes', 1)
    refused = cluster.kubectl('apply', '--dry-run=server', '-f', '-', input=broken, check=False)
    assert refused.returncode != 0
    assert 'concurrencyPolicy' in refused.stderr


@pytest.mark.kubernetes
def test_install_runs_the_migration_hook_and_reaches_running_web_pods(cluster):
    cluster.helm('install', 'tom', str(CHART), *VALUES, '--wait', '--timeout', '3m', timeout=240)

    pods = cluster.get('pods', '-l', 'app.kubernetes.io/instance=tom,app.kubernetes.io/component=web')['items']
    assert len(pods) == 2 and all(pod['status']['phase'] == 'Running' for pod in pods)
    migrate = cluster.get('job', 'tom-mytom-migrate')
    assert migrate['status'].get('succeeded') == 1
    command = migrate['spec']['template']['spec']['containers'][0]['args'][0]
    assert 'manage.py migrate --no-input' in command and 'jobs loaded /etc/tom/crontab' in command
    cronjobs = {c['metadata']['name'] for c in cluster.get('cronjobs', '-l', 'app.kubernetes.io/instance=tom')['items']}
    exported = yaml.safe_load((CHART / 'crontab-jobs.yaml').read_text())
    assert cronjobs == {f'tom-mytom-{job["name"]}' for job in exported['jobs']} | {'tom-mytom-jobs-check'}
    # The queued tasks' worker: a Deployment of its own (CronJobs cannot run a queue).
    workers = cluster.get('pods', '-l', 'app.kubernetes.io/instance=tom,app.kubernetes.io/component=worker')['items']
    assert len(workers) == 1 and workers[0]['status']['phase'] == 'Running'
    worker = workers[0]['spec']['containers'][0]
    assert worker['args'] == ['python3', 'manage.py', 'tasks', 'work']
    assert worker['livenessProbe']['exec']['command'] == ['python3', '-I', '-S', '/app/docker/healthcheck.py', 'worker']


@pytest.mark.kubernetes
def test_a_crontab_line_every_minute_gets_its_job_and_forbid_holds_off_the_next(cluster, export_env, tmp_path):
    chart = tmp_path / 'chart'
    shutil.copytree(CHART, chart)
    job = export(export_env, '* * * * * python manage.py jobs run --timeout 2m clearsessions\n', tmp_path)
    assert job.returncode == 0, job.stderr
    (chart / 'crontab-jobs.yaml').write_text(job.stdout)
    # kwok completes a Job's pod after the delay (and the longest jitter) its annotations ask
    # for: here longer than a minute, so that the Job still runs at the next tick.
    stage = 'jobs.podAnnotations.pod-complete\\.stage\\.kwok\\.x-k8s\\.io'
    cluster.helm('install', 'tick', str(chart), *VALUES,
                 '--set', 'web.replicas=0', '--set', 'overdueCheck.enabled=false',
                 '--set-string', f'{stage}/delay=150s', '--set-string', f'{stage}/jitter-delay=150s',
                 '--wait', '--timeout', '3m', timeout=240)
    installed = datetime.now(UTC)

    jobs = wait_for_jobs(cluster, 'tick-mytom-clearsessions', 1, 90)
    created = datetime.fromisoformat(jobs[0]['metadata']['creationTimestamp'].replace('Z', '+00:00'))
    assert created.second < 30 and (created - installed).total_seconds() < 75  # at the next minute
    spec = jobs[0]['spec']
    assert spec['backoffLimit'] == 0 and spec['activeDeadlineSeconds'] == 120 + 10 + 60
    pod = spec['template']['spec']
    assert pod['restartPolicy'] == 'Never'
    assert pod['containers'][0]['args'] == ['python', 'manage.py', 'jobs', 'run', '--timeout', '2m', 'clearsessions']
    cronjob = cluster.get('cronjob', 'tick-mytom-clearsessions')['spec']
    assert cronjob['concurrencyPolicy'] == 'Forbid' and cronjob['startingDeadlineSeconds'] == 60
    assert cronjob['timeZone'] == 'UTC'

    # The next tick comes while that Job still runs: Kubernetes starts no second one.
    deadline = time.monotonic() + 90
    while not any(event['reason'] == 'JobAlreadyActive' for event in cronjob_events(cluster)):
        assert time.monotonic() < deadline, 'no tick was held off while the Job ran'
        time.sleep(2)
    assert len(owned_jobs(cluster, 'tick-mytom-clearsessions')) == 1


def owned_jobs(cluster, cronjob):
    return [job for job in cluster.get('jobs')['items']
            if any(ref['name'] == cronjob for ref in job['metadata'].get('ownerReferences', []))]


def wait_for_jobs(cluster, cronjob, count, seconds):
    deadline = time.monotonic() + seconds
    while len(jobs := owned_jobs(cluster, cronjob)) < count:
        assert time.monotonic() < deadline, f'no Job of {cronjob} within {seconds} s'
        time.sleep(1)
    return jobs


def cronjob_events(cluster):
    events = cluster.get('events', '--field-selector', 'involvedObject.kind=CronJob')['items']
    return [{'reason': e['reason'], 'message': e.get('message', '')} for e in events]


@pytest.mark.kubernetes
def test_the_control_plane_is_the_kubernetes_release_built(cluster):
    assert json.loads(cluster.kubectl('version', '-o', 'json').stdout)['serverVersion']['gitVersion'] == 'v1.37.2'
