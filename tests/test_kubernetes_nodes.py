"""The Helm chart on two real Kubernetes nodes (tests/k8s/node.py: kubelet, containerd, CNI on
this machine), running the image built from this checkout. Outside the cluster, on an address
the pods reach: PostgreSQL, the fake LCO and an S3 server (data products and backups).

One release for the module, a crontab of its own: save_data every minute, the backups. The
tests run in order."""
import hashlib
import json
import time
import urllib.request
from datetime import UTC, datetime

import pytest
import requests

from tests.k8s import tom
from tests.k8s.node import HOST_ADDRESS
from tests.k8s.tom import HOST, RELEASE
from tests.kafka_broker import KafkaBroker
from tests.kafka_broker import declaration as stream_declaration
from tests.test_e2e_docker import require_engine

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker]

SAVE_DATA = f'{RELEASE}-mytom-save-data'
CRONTAB = ('* * * * * python manage.py jobs run --timeout 4m save_data\n'
           '47 2 * * * python manage.py jobs run --name backup --timeout 3h backup create --kind scheduled\n')


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    require_engine('to build the image')
    directory = tmp_path_factory.mktemp('nodes')
    try:
        with tom.image(directory) as (name, archive), tom.world(directory, name, archive) as world:
            world.chart = world.install(directory, CRONTAB)
            yield world
    except tom.SetUpFailed as error:
        pytest.fail(str(error))
    # The machine as the nodes found it: no interface, chain, mount, cgroup, sysctl or process left.
    assert world.cluster.leftovers() == []


def wait_for(what, check, seconds, every=2.0):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {seconds} s waiting for {what}')
        time.sleep(every)
    return found


def answer(url, host=HOST):
    """(status, body) of a GET through the Service, retried while the connection fails."""
    request = urllib.request.Request(url, headers={'Host': host})
    for _ in range(30):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            time.sleep(1)
    raise AssertionError(f'{url} never answered')


def add_observation(world, observation_id, size=2048):
    """An LCO observation of one frame that has finished, and the TOM's record of it (made in
    a web pod)."""
    made = world.lco.add_request(observation_id, frames=1, size=size)
    pod = live_pods(world, 'web')[0]['metadata']['name']
    world.manage_in(pod, (
        'from tom_targets.models import Target; from tom_observations.models import ObservationRecord;'
        'target, _ = Target.objects.get_or_create(name="SN 2026k8s", defaults=dict(type="SIDEREAL", ra=1, dec=2));'
        f'ObservationRecord.objects.create(target=target, facility="LCORedirect", observation_id="{observation_id}",'
        ' status="COMPLETED", parameters={}); print("ok")'))
    return made


def stored(world, frame):
    return world.sql('SELECT count(*) FROM tom_dataproducts_dataproduct WHERE data LIKE %s',
                     f'%{frame.filename}')[0][0]


def live_pods(world, component, release=RELEASE):
    """Running pods that are not on their way out (a rollout's old pods may still be stopping)."""
    return [pod for pod in world.pods(component, release=release)
            if pod['status']['phase'] == 'Running' and 'deletionTimestamp' not in pod['metadata']]


def job_pods(world):
    return [pod for pod in world.pods('job')
            if pod['metadata']['labels'].get('batch.kubernetes.io/job-name', '').startswith(SAVE_DATA)]


# --- the tests, in order ---------------------------------------------------------------------

def test_install_migrates_and_web_pods_on_both_nodes_answer_through_the_service(release):
    world = release
    migrate = world.cluster.get('job', f'{RELEASE}-mytom-migrate')
    assert migrate['status'].get('succeeded') == 1
    assert world.sql("SELECT count(*) FROM django_migrations WHERE app = 'myapp'")[0][0] > 0

    web = world.pods('web')
    assert len(web) == 2 and all(pod['status']['phase'] == 'Running' for pod in web)
    assert {pod['spec']['nodeName'] for pod in web} == {'node-a', 'node-b'}  # spread by default
    service = world.cluster.get('service', f'{RELEASE}-mytom-web')['spec']['clusterIP']
    status, body = answer(f'http://{service}:8000/accounts/login/')
    assert status == 200 and 'name="password"' in body
    status, _ = answer(f'http://{service}:8000/accounts/login/', host='evil.example.net')
    assert status == 400

    # The pod security context holds on a real node: uid 1000, nothing of the image writable.
    pod = web[0]['metadata']['name']
    assert world.cluster.kubectl('exec', pod, '--', 'id', '-u').stdout.strip() == '1000'
    touched = world.cluster.kubectl('exec', pod, '--', 'touch', '/app/mytom/x', check=False)
    assert touched.returncode != 0 and 'Read-only file system' in touched.stderr


def test_a_save_data_cronjob_downloads_into_the_bucket_and_a_web_pod_on_the_other_node_serves_it(release):
    world = release
    frame, = add_observation(world, 7001)

    wait_for('a scheduled save_data run that stored the frame', lambda: stored(world, frame) == 1, 150)
    runs = world.runs()
    assert any(run[1] == 'schedule' and run[2] == 'succeeded' for run in runs), runs
    assert world.lco.count('download', frame.id) == 1
    keys = [item['Key'] for item in world.s3.list_objects_v2(Bucket='tom-data').get('Contents', [])]
    assert any(key.endswith(frame.filename) for key in keys), keys

    # The run's pod ran on one node; a web pod on the other reads the file from the bucket.
    done = wait_for('the run\'s pod to succeed', lambda: [
        pod for pod in job_pods(world) if pod['status']['phase'] == 'Succeeded'], 60)
    job_node = done[0]['spec']['nodeName']
    other = next(pod for pod in live_pods(world, 'web') if pod['spec']['nodeName'] != job_node)
    digest = world.manage_in(other['metadata']['name'], (
        'import hashlib; from tom_dataproducts.models import DataProduct;'
        f'p = DataProduct.objects.get(data__endswith="{frame.filename}");'
        'print(hashlib.sha256(p.data.open("rb").read()).hexdigest())'))
    assert digest == hashlib.sha256(frame.content()).hexdigest()

    # The job's own lines reach `kubectl logs`.
    logs = world.cluster.kubectl('logs', done[0]['metadata']['name']).stdout
    assert 'jobs: save_data run' in logs and 'succeeded' in logs

    # One run per tick, whichever node: no scheduled minute ran twice.
    ticks = [run[3] for run in world.runs() if run[1] == 'schedule' and run[2] != 'skipped']
    assert len(ticks) == len(set(ticks)), ticks
    print(json.dumps({name: round(seconds) for name, seconds in world.timings.items()}))


def test_forbid_holds_the_next_tick_and_a_pod_deleted_mid_run_leaves_its_run_ended(release):
    world = release
    # Its download drags on for 96 s (256 bytes every 6 s, each within TOM_HTTP_TIMEOUT):
    # longer than the schedule's minute.
    frame, = add_observation(world, 7002, size=4096)
    world.lco.fault('download', frame.id, 'slow', value=6)

    running = wait_for('a save_data run held at the download', lambda: world.lco.count('download', frame.id) and [
        run for run in world.runs() if run[2] == 'running'], 150)
    held = wait_for('the next tick held off (JobAlreadyActive)', lambda: any(
        event['reason'] == 'JobAlreadyActive' for event in world.cluster.get(
            'events', '--field-selector', f'involvedObject.name={SAVE_DATA}')['items']), 100)
    assert held
    active = [pod for pod in job_pods(world) if pod['status']['phase'] in ('Pending', 'Running')]
    assert len(active) == 1

    world.cluster.kubectl('delete', 'pod', active[0]['metadata']['name'], '--wait=false')
    ended = wait_for("the deleted pod's run recorded as ended", lambda: [
        run for run in world.runs() if run[0] == running[0][0] and run[2] != 'running'], 60)
    assert ended[0][2] in ('failed', 'lost'), ended

    world.lco.faults.pop(('download', frame.id))
    wait_for('the next tick to store the frame', lambda: stored(world, frame) == 1, 150)
    assert stored(world, frame) == 1


def test_kubectl_create_job_from_the_cronjob_runs_the_job_now(release):
    world = release
    # Clear of the scheduled runs: a manual run beside one would be skipped for the lock.
    wait_for('a quiet moment in the minute', lambda: 15 <= datetime.now(UTC).second <= 30 and not [
        run for run in world.runs() if run[2] == 'running'], 90, every=1)
    before = len(world.runs())
    world.cluster.kubectl('create', 'job', 'save-data-now', f'--from=cronjob/{SAVE_DATA}')
    world.cluster.kubectl('wait', '--for=condition=complete', 'job/save-data-now', '--timeout=120s', timeout=150)
    manual = [run for run in world.runs()[before:] if run[1] == 'manual']
    assert manual and manual[0][2] == 'succeeded', world.runs()[before:]


def test_the_worker_deployment_runs_a_task_posted_from_the_web(release):
    world = release
    pod = live_pods(world, 'web')[0]['metadata']['name']
    target = world.manage_in(pod, (
        'from tom_targets.models import Target;'
        't, _ = Target.objects.get_or_create(name="SN 2026atl", defaults=dict(type="SIDEREAL", ra=10, dec=20));'
        'print(t.pk)'))
    service = world.cluster.get('service', f'{RELEASE}-mytom-web')['spec']['clusterIP']
    web = logged_in(f'http://{service}:8000')

    answer = web.post(f'http://{service}:8000/dataproducts/data/single_target_data_service/Atlas/query/', data={
        'target_id': target, 'service': 'Atlas', 'min_date_mjd': 60000, 'max_date_mjd': 60010,
        'csrfmiddlewaretoken': web.cookies['csrftoken']}, allow_redirects=False, timeout=30)

    assert answer.status_code == 302, answer.text[-2000:]
    record = wait_for('the worker to finish the task', lambda: world.sql(
        "SELECT outcome, host, error FROM myapp_taskrecord WHERE outcome NOT IN ('', 'running')"), 180)
    assert record[0][0] == 'succeeded', record
    assert record[0][1] in {p['metadata']['name'] for p in world.pods('worker')}
    products = world.sql("SELECT count(*) FROM tom_dataproducts_dataproduct WHERE data_product_type = "
                         "'atlas_photometry' AND target_id = %s", int(target))
    assert products[0][0] == 1 and world.atlas.jobs


def test_alert_streams_run_in_two_worker_pods_and_store_each_alert_once(release, tmp_path):
    """streams.declaration (--set-file) run by the worker Deployment's pods on both nodes, one
    consumer group: a real Kafka broker on the host address the pods reach; alerts produced
    while a worker pod is deleted are each stored once."""
    world = release
    broker = KafkaBroker(tmp_path, listen=HOST_ADDRESS, advertise=HOST_ADDRESS).start()
    declaration = tmp_path / 'streams.toml'
    declaration.write_text(stream_declaration(broker.bootstrap, 'k8s.alerts', name='k8s'))
    count = "SELECT count(*), count(DISTINCT value) FROM myapp_streamalert WHERE stream = 'k8s'"
    try:
        broker.create_topic('k8s.alerts')
        world.cluster.helm('upgrade', RELEASE, str(world.chart), '--reuse-values', '--set', 'worker.replicas=2',
                           '--set-file', f'streams.declaration={declaration}', '--wait', '--timeout', '5m', timeout=360)

        def reading():
            pods = live_pods(world, 'worker')
            logs = [world.cluster.kubectl('logs', pod['metadata']['name'], check=False).stdout for pod in pods]
            return len(pods) == 2 and all('stream k8s: reading' in log for log in logs) and pods
        pods = wait_for('both worker pods to read the stream (the kubelet syncs the ConfigMap)', reading, 180)
        assert len({pod['spec']['nodeName'] for pod in pods}) == 2, 'the worker pods share one node'
        produced = [f'k8s alert {n}' for n in range(1000)]
        broker.produce('k8s.alerts', produced[:500])
        world.cluster.kubectl('delete', 'pod', pods[0]['metadata']['name'], '--wait=false')
        broker.produce('k8s.alerts', produced[500:])
        wait_for('1000 alerts stored', lambda: world.sql(count)[0][0] >= 1000, 180)
        time.sleep(5)
        assert world.sql(count)[0] == (1000, 1000)
    finally:
        # The stream stays declared, its broker gone: the worker pods restart it with backoff
        # (the later tests need no second upgrade's minute).
        broker.stop()


def logged_in(url):
    """A session of the administrator the migration hook made, through the Service."""
    session = requests.Session()
    session.headers['Host'] = HOST
    session.get(f'{url}/accounts/login/', timeout=30)
    answer = session.post(f'{url}/accounts/login/', data={
        'login': tom.ADMIN, 'password': tom.ADMIN_PASSWORD, 'csrfmiddlewaretoken': session.cookies['csrftoken']},
        allow_redirects=False, timeout=30)
    assert answer.status_code == 302 and 'sessionid' in session.cookies, answer.text[-2000:]
    return session


def test_backups_from_cronjobs_share_one_passphrase_in_the_bucket(release):
    world = release
    for name in ('backup-one', 'backup-two'):
        world.cluster.kubectl('create', 'job', name, f'--from=cronjob/{RELEASE}-mytom-backup')
        world.cluster.kubectl('wait', '--for=condition=complete', f'job/{name}', '--timeout=300s', timeout=330)
    runs = world.runs('backup')
    assert [run[2] for run in runs if run[1] == 'manual'][-2:] == ['succeeded', 'succeeded'], runs
    keys = [item['Key'] for item in world.s3.list_objects_v2(Bucket='tom-backups').get('Contents', [])]
    assert 'config' in keys and sum(key.startswith('snapshots/') for key in keys) >= 2


def test_the_restore_procedure_as_written_brings_rows_files_and_sessions_back_into_a_fresh_release(
        release, tmp_path_factory):
    world = release
    service = world.cluster.get('service', f'{RELEASE}-mytom-web')['spec']['clusterIP']
    session = logged_in(f'http://{service}:8000')  # saved in the snapshot below
    world.cluster.kubectl('create', 'job', 'backup-for-restore', f'--from=cronjob/{RELEASE}-mytom-backup')
    world.cluster.kubectl('wait', '--for=condition=complete', 'job/backup-for-restore', '--timeout=300s', timeout=330)
    targets = world.sql('SELECT name FROM tom_targets_basetarget ORDER BY name')
    products = world.sql('SELECT data FROM tom_dataproducts_dataproduct ORDER BY data')

    # docs/backups.md, "On Kubernetes": install the chart onto an empty database (here a second
    # release beside the first, without its CronJobs), the snapshot's key in the Secret first,
    # `backup restore latest` in its web Deployment, then a rollout restart.
    world.install(tmp_path_factory.mktemp('restore'), CRONTAB, '--set', 'jobs.enabled=false', '--set',
                  'worker.enabled=false', '--set', 'web.replicas=1', release='fresh', database='fresh')
    printed = world.cluster.kubectl('exec', 'deploy/fresh-mytom-web', '--', 'python', 'manage.py', 'backup',
                                    'secrets', 'latest').stdout
    assert 'kubernetes-tests-secret-key' in printed  # the key this release's Secret already holds
    restored = world.cluster.kubectl('exec', 'deploy/fresh-mytom-web', '--', 'python', 'manage.py', 'backup',
                                     'restore', 'latest', check=False, timeout=600)
    assert restored.returncode == 0, restored.stdout[-2000:] + restored.stderr[-2000:]
    world.cluster.kubectl('rollout', 'restart', 'deploy/fresh-mytom-web')
    world.cluster.kubectl('rollout', 'status', 'deploy/fresh-mytom-web', '--timeout=180s', timeout=200)

    assert world.sql('SELECT name FROM tom_targets_basetarget ORDER BY name', database='fresh') == targets
    assert world.sql('SELECT data FROM tom_dataproducts_dataproduct ORDER BY data', database='fresh') == products
    pod = live_pods(world, 'web', release='fresh')[0]['metadata']['name']
    name = products[0][0]
    digest = world.manage_in(pod, (
        'import hashlib; from django.core.files.storage import default_storage;'
        f'print(hashlib.sha256(default_storage.open("{name}").read()).hexdigest())'))
    original = world.manage_in(live_pods(world, 'web')[0]['metadata']['name'], (
        'import hashlib; from django.core.files.storage import default_storage;'
        f'print(hashlib.sha256(default_storage.open("{name}").read()).hexdigest())'))
    assert digest == original and len(digest) == 64
    # Who was logged in before the backup still is, on the restored TOM.
    fresh = world.cluster.get('service', 'fresh-mytom-web')['spec']['clusterIP']
    page = session.get(f'http://{fresh}:8000/targets/', allow_redirects=False, timeout=30)
    assert page.status_code == 200 and 'SN 2026k8s' in page.text
    world.cluster.helm('uninstall', 'fresh', '--wait', timeout=200)


def test_helm_upgrade_to_the_next_image_takes_a_snapshot_first_and_keeps_everything(release, tmp_path_factory):
    world = release
    targets = world.sql('SELECT name FROM tom_targets_basetarget ORDER BY name')
    snapshots = snapshot_count(world)

    with tom.image_with_a_migration(tmp_path_factory.mktemp('next'), world.image) as (name, archive):
        world.cluster.import_image(archive)
        world.cluster.helm('upgrade', RELEASE, str(world.chart), '--reuse-values', '--set-string',
                           f'image.tag={name.split(":")[1]}', '--wait', '--timeout', '6m', timeout=420)

    log = world.cluster.kubectl('logs', f'job/{RELEASE}-mytom-migrate').stdout
    assert '1 migration(s) to apply (myapp.9999_next_release): taking a snapshot first' in log, log
    assert snapshot_count(world) == snapshots + 1
    assert world.sql("SELECT count(*) FROM django_migrations WHERE name = '9999_next_release'")[0][0] == 1
    assert world.sql('SELECT name FROM tom_targets_basetarget ORDER BY name') == targets
    # The old ReplicaSet's pods may still be terminating when `--wait` returns.
    assert {pod['spec']['containers'][0]['image'].rsplit(':', 1)[1] for pod in live_pods(world, 'web')} == {'next'}


def snapshot_count(world):
    return sum(item['Key'].startswith('snapshots/')
               for item in world.s3.list_objects_v2(Bucket='tom-backups').get('Contents', []))


def test_a_node_lost_mid_run_shows_its_run_lost_and_once_declared_gone_the_next_tick_runs_elsewhere(release):
    world = release
    service = world.cluster.get('service', f'{RELEASE}-mytom-web')['spec']['clusterIP']
    web = logged_in(f'http://{service}:8000')
    frame, = add_observation(world, 7003, size=8192)
    world.lco.fault('download', frame.id, 'slow', value=6)  # 192 s
    running = wait_for('a save_data run held at the download', lambda: world.lco.count('download', frame.id) and [
        run for run in world.runs() if run[2] == 'running'], 150)
    pod = next(pod for pod in job_pods(world) if pod['status']['phase'] == 'Running')
    lost_node = next(node for node in world.cluster.nodes if node.name == pod['spec']['nodeName'])

    killed = time.monotonic()
    lost_node.kill()  # kubelet, containerd and every container of the node, at once
    world.lco.faults.pop(('download', frame.id))

    def lost_shown():
        try:
            jobs = web.get(f'http://{service}:8000/api/jobs/', timeout=10).json()['jobs']
        except requests.RequestException:  # the dead node's web pod, until the Service drops it
            return False
        last = next(job for job in jobs if job['name'] == 'save_data')['last_run']
        return last['outcome'] == 'lost' and last['id'] == running[0][0]

    # The Jobs page and /api/jobs/ show the run lost once its heartbeat is a minute old.
    wait_for('the run shown lost', lost_shown, 150)
    shown_lost = time.monotonic() - killed

    # Kubernetes keeps a silent node's pods "Terminating", and their Job active (so Forbid
    # holds every tick back), until it is told the node is gone: the out-of-service taint an
    # operator (or a cloud's node controller) puts on a node that will not come back.
    wait_for('the node marked NotReady', lambda: not world.cluster.node_ready(lost_node.name), 120)
    world.cluster.kubectl('taint', 'node', lost_node.name, 'node.kubernetes.io/out-of-service=nodeshutdown:NoExecute')
    declared = time.monotonic()
    wait_for('the next tick to store the frame on the other node', lambda: stored(world, frame) == 1, 240)
    stored_after = time.monotonic() - declared

    run = world.sql('SELECT outcome FROM myapp_jobrun WHERE id = %s', running[0][0])[0]
    assert run[0] == 'lost', run
    survivor = wait_for('the run that stored it to succeed', lambda: [
        p for p in job_pods(world) if p['status']['phase'] == 'Succeeded' and p['spec']['nodeName'] != lost_node.name],
        60)
    assert survivor and stored(world, frame) == 1
    print(json.dumps({'node killed to its run shown lost': round(shown_lost),
                      'node declared gone to the frame stored': round(stored_after)}))
