"""save_data at scale: concurrency and its bounds, 429s, incremental listing with a settle
window, `--all`, the Save button's hooks, and a query count that does not grow with the
number of records. Against the fake LCO on 127.0.0.1, on SQLite and PostgreSQL."""
import io
import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from tom_dataproducts.models import DataProduct

from myapp.models import ProductListing
from tests.conftest import make_record, make_target, run_job, start_job, stored_bytes, wait_for

LONG_AGO = timedelta(days=30)


def observed(record, ago):
    """The record's observation ended `ago` before now, as its facility reported."""
    record.scheduled_end = timezone.now() - ago
    record.save(update_fields=['scheduled_end'])
    return record


@pytest.mark.parametrize('kind, variable', [('download', 'TOM_HTTP_CONCURRENCY'),
                                            ('frames', 'TOM_HTTP_LISTING_CONCURRENCY')])
def test_requests_run_at_once_up_to_their_bound(lco, tom_env, kind, variable):
    target = make_target()
    frames = {}
    for observation_id in range(2001, 2006):
        frames[observation_id] = lco.add_request(observation_id, frames=1)
        make_record(target, observation_id)
        key = observation_id if kind == 'frames' else frames[observation_id][0].id
        lco.fault(kind, key, 'gate')  # held until the test opens the gate

    job = start_job({**tom_env, variable: '3'}, 'save_data')
    try:
        wait_for('three requests at once', lambda: lco.waiting_at_gate == 3, 30)
        time.sleep(0.5)
        assert lco.waiting_at_gate == 3, 'more requests at once than the bound'
    finally:
        lco.gate.set()
    out, err = job.communicate(timeout=60)

    assert job.returncode == 0, err
    assert all(stored_bytes(tom_env, f[0]) == f[0].content() for f in frames.values())


def test_a_429_answer_is_waited_out_as_retry_after_says(lco, tom_env):
    frames = lco.add_request(2101, frames=1)
    make_record(make_target(), 2101)
    lco.fault('frames', 2101, 'status', 429, times=1, retry_after='1')

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()
    asked = [at for at, kind, key in lco.hit_times if (kind, key) == ('frames', 2101)]
    assert len(asked) == 2 and asked[1] - asked[0] >= 1.0


def test_a_429_asking_for_too_long_a_wait_fails_the_record_at_once(lco, tom_env):
    lco.add_request(2201, frames=1)
    make_record(make_target(), 2201)
    lco.fault('frames', 2201, 'status', 429, retry_after='7200')

    started = time.monotonic()
    job = run_job(tom_env, 'save_data')

    assert job.returncode == 1
    assert time.monotonic() - started < 60
    failed = [line for line in job.stderr.splitlines() if line.startswith('FAILED')]
    assert len(failed) == 1 and 'observation 2201 ' in failed[0] and 'HTTP 429 Too Many Requests' in failed[0]


def test_a_settled_record_is_listed_once_then_never_again(lco, tom_env):
    frames = lco.add_request(2301, frames=2)
    record = observed(make_record(make_target(), 2301), LONG_AGO)

    first = run_job(tom_env, 'save_data')
    second = run_job(tom_env, 'save_data')

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert all(stored_bytes(tom_env, f) == f.content() for f in frames)
    assert lco.count('frames', 2301) == 1, 'a settled record was listed again'
    assert 'done: 0 record(s) checked, downloaded 0 product(s)' in second.stdout
    assert '1 settled record(s) not listed' in second.stdout
    listing = ProductListing.objects.get(record=record)
    assert listing.succeeded and listing.products == 2 and listing.error == ''


def test_a_record_is_listed_again_within_its_settle_window_and_gets_late_products(lco, tom_env):
    raw = lco.add_request(2401, frames=1)
    record = observed(make_record(make_target(), 2401), timedelta(hours=1))
    assert run_job(tom_env, 'save_data').returncode == 0
    # The reduced frame arrives in the archive after the raw one.
    reduced = lco.add_request(2401, frames=1)
    lco.requests[2401].frames[:0] = raw

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert 'downloaded 1 product(s)' in job.stdout
    assert stored_bytes(tom_env, reduced[0]) == reduced[0].content()
    assert lco.count('frames', 2401) == 2

    # 48 hours later the window has closed: one more listing, then none.
    observed(record, timedelta(hours=49))
    ProductListing.objects.filter(record=record).update(listed_at=F('listed_at') - timedelta(hours=48),
                                                        first_listed_at=F('first_listed_at') - timedelta(hours=48))
    assert run_job(tom_env, 'save_data').returncode == 0
    assert run_job(tom_env, 'save_data').returncode == 0
    assert lco.count('frames', 2401) == 3


def test_the_settle_window_is_set_by_SAVE_DATA_SETTLE_HOURS(lco, tom_env):
    lco.add_request(2501, frames=1)
    observed(make_record(make_target(), 2501), timedelta(hours=3))

    for _ in range(2):
        assert run_job({**tom_env, 'SAVE_DATA_SETTLE_HOURS': '2'}, 'save_data').returncode == 0
    assert lco.count('frames', 2501) == 1  # 3 h ago with a 2 h window: settled
    for _ in range(2):
        assert run_job({**tom_env, 'SAVE_DATA_SETTLE_HOURS': '4'}, 'save_data').returncode == 0
    assert lco.count('frames', 2501) == 3  # with a 4 h window: not yet


def test_a_record_whose_listing_failed_is_listed_again_although_settled(lco, tom_env):
    frames = lco.add_request(2601, frames=1)
    record = observed(make_record(make_target(), 2601), LONG_AGO)
    lco.fault('frames', 2601, 'status', 500, times=1)
    assert run_job({**tom_env, 'TOM_HTTP_RETRIES': '0'}, 'save_data').returncode == 1
    listing = ProductListing.objects.get(record=record)
    assert not listing.succeeded and 'HTTP 500' in listing.error

    assert run_job(tom_env, 'save_data').returncode == 0
    assert run_job(tom_env, 'save_data').returncode == 0

    assert stored_bytes(tom_env, frames[0]) == frames[0].content()
    assert lco.count('frames', 2601) == 2
    assert ProductListing.objects.get(record=record).succeeded


def test_a_record_whose_download_failed_is_listed_again(lco, tom_env):
    frames = lco.add_request(2651, frames=2)
    observed(make_record(make_target(), 2651), LONG_AGO)
    lco.fault('download', frames[1].id, 'status', 404, times=1)
    assert run_job(tom_env, 'save_data').returncode == 1

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert all(stored_bytes(tom_env, f) == f.content() for f in frames)
    assert [lco.count('download', f.id) for f in frames] == [1, 2]


def test_all_lists_settled_records_too(lco, tom_env):
    frames = lco.add_request(2701, frames=1)
    observed(make_record(make_target(), 2701), LONG_AGO)
    assert run_job(tom_env, 'save_data').returncode == 0
    # The archive reprocessed the observation: a new product.
    new = lco.add_request(2701, frames=1)
    lco.requests[2701].frames[:0] = frames

    plain = run_job(tom_env, 'save_data')
    everything = run_job(tom_env, 'save_data', '--all')

    assert 'downloaded 0 product(s)' in plain.stdout
    assert everything.returncode == 0, everything.stderr
    assert 'done: 1 record(s) checked, downloaded 1 product(s)' in everything.stdout
    assert stored_bytes(tom_env, new[0]) == new[0].content()


def test_a_dry_run_records_no_listing(lco, tom_env):
    lco.add_request(2751, frames=1)
    observed(make_record(make_target(), 2751), LONG_AGO)

    assert run_job(tom_env, 'save_data', '--dry-run').returncode == 0
    job = run_job(tom_env, 'save_data', '--dry-run')

    assert 'would download 1 product(s)' in job.stdout
    assert ProductListing.objects.count() == 0


def hook_calls(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def with_hooks(lco, tom_env, tmp_path):
    """Two records (2 and 1 frames), and the environment of a TOM running tests/sync_hooks.py."""
    target = make_target()
    first, second = lco.add_request(2801, frames=2), lco.add_request(2802, frames=1)
    make_record(target, 2801)
    make_record(target, 2802)
    log = tmp_path / 'hooks.jsonl'
    return first, second, log, {**tom_env, 'DJANGO_SETTINGS_MODULE': 'tests.hook_settings', 'HOOK_LOG': str(log)}


def test_hooks_run_like_the_save_buttons_after_each_product_is_committed(lco, tom_env, tmp_path):
    first, second, log, env = with_hooks(lco, tom_env, tmp_path)

    job = run_job(env, 'save_data')

    assert job.returncode == 0, job.stderr
    calls = hook_calls(log)
    singles = sorted(tuple(c['products']) for c in calls if c['hook'] == 'data_product_post_save')
    multiples = sorted(sorted(c['products']) for c in calls if c['hook'] == 'multiple_data_products_post_save')
    assert singles == sorted((str(f.id),) for f in first + second)
    assert multiples == [sorted(str(f.id) for f in first), [str(second[0].id)]]
    assert all(c['committed'] and c['files'] for c in calls), calls

    assert run_job(env, 'save_data').returncode == 0
    assert len(hook_calls(log)) == len(calls), 'hooks ran again for products stored before'


def test_a_failing_hook_fails_its_record_and_loses_nothing(lco, tom_env, tmp_path):
    bad, good, log, env = with_hooks(lco, tom_env, tmp_path)
    env['HOOK_FAIL'] = bad[0].filename

    job = run_job(env, 'save_data')

    assert job.returncode == 1
    failed = [line for line in job.stderr.splitlines() if line.startswith('FAILED')]
    assert len(failed) == 1 and 'observation 2801 ' in failed[0], job.stderr
    assert (f'hook data_product_post_save failed for sn-2026abc/lcoredirect/{bad[0].filename}: '
            f'ValueError: thumbnail maker choked on') in failed[0]
    assert 'Traceback' not in job.stderr
    assert all(stored_bytes(tom_env, f) == f.content() for f in bad + good)
    # The other product of the failing record, and the record's batch hook, still ran.
    calls = hook_calls(log)
    assert [str(bad[1].id)] in [c['products'] for c in calls]
    assert sorted(str(f.id) for f in bad) in [sorted(c['products']) for c in calls
                                              if c['hook'] == 'multiple_data_products_post_save']


def sync_in_process():
    """save_data in this process (so its queries can be counted); returns the query count."""
    out, err = io.StringIO(), io.StringIO()
    with CaptureQueriesContext(connection) as queries:
        call_command('save_data', stdout=out, stderr=err)
    assert 'FAILED' not in err.getvalue(), err.getvalue()
    return len(queries), out.getvalue()


@pytest.fixture
def in_process(lco, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = str(tmp_path / 'media')
    settings.FACILITIES = {**settings.FACILITIES,
                           'LCO': {'portal_url': lco.url, 'archive_url': lco.url, 'api_key': lco.api_key}}
    return lco


def add_records(lco, target, ids, frames=3):
    for observation_id in ids:
        lco.add_request(observation_id, frames=frames)
        observed(make_record(target, observation_id), LONG_AGO)


@pytest.mark.django_db
def test_database_queries_do_not_grow_with_the_number_of_records(in_process):
    target = make_target()
    add_records(in_process, target, range(3001, 3003))
    small, out = sync_in_process()
    assert 'downloaded 6 product(s)' in out

    add_records(in_process, target, range(3101, 3111))
    large, out = sync_in_process()
    assert 'done: 10 record(s) checked, downloaded 30 product(s)' in out

    assert DataProduct.objects.count() == 36
    assert large == small, f'{small} queries for 2 records, {large} for 10'
    steady, out = sync_in_process()
    assert '12 settled record(s) not listed' in out
    assert steady < small


@pytest.mark.django_db
def test_listings_are_shown_in_the_admin(in_process, admin_client):
    add_records(in_process, make_target(), [3201], frames=1)
    sync_in_process()

    page = admin_client.get('/admin/myapp/productlisting/')

    assert page.status_code == 200
    assert 'SN 2026abc @ LCORedirect' in page.content.decode()
