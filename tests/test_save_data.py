"""`manage.py save_data`, run as cron runs it, against the fake LCO on 127.0.0.1."""
import time
from pathlib import Path

import pytest
from tom_dataproducts.models import DataProduct

from tests.conftest import files_under, make_record, make_target, media, run_job, start_job, stored_bytes


def test_downloads_every_finished_observation_and_nothing_else(lco, tom_env):
    target = make_target()
    done = lco.add_request(101, frames=3)
    expired = lco.add_request(102, state='WINDOW_EXPIRED', frames=1)
    lco.add_request(103, state='PENDING')
    make_record(target, 101)
    make_record(target, 102, status='WINDOW_EXPIRED')
    make_record(target, 103, status='PENDING')
    make_record(target, 104, status='ON_HOLD', facility='GEM')  # terminal for Gemini; it has no archive

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    for frame in done + expired:
        assert stored_bytes(tom_env, frame) == frame.content()
    assert lco.count('frames', 103) == 0, 'a pending observation was asked for its data'
    assert DataProduct.objects.count() == 4
    assert 'done: 3 record(s) checked, downloaded 4 product(s) (8192 bytes), 0 failure(s)' in job.stdout
    assert job.stderr == ''


def test_follows_every_page_of_the_frame_listing(lco, tom_env):
    frames = lco.add_request(201, frames=5)  # the fake serves 2 per page
    make_record(make_target(), 201)

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert all(stored_bytes(tom_env, f) == f.content() for f in frames)
    assert lco.count('frames', 201) == 3


def test_second_run_downloads_nothing_already_stored(lco, tom_env):
    frames = lco.add_request(301)
    make_record(make_target(), 301)
    assert run_job(tom_env, 'save_data').returncode == 0

    again = run_job(tom_env, 'save_data')

    assert again.returncode == 0, again.stderr
    assert 'downloaded 0 product(s) (0 bytes)' in again.stdout
    assert all(lco.count('download', f.id) == 1 for f in frames)
    assert len(files_under(media(tom_env))) == 2


def test_record_of_unconfigured_facility_is_reported_and_skipped(lco, tom_env):
    target = make_target()
    frames = lco.add_request(401)
    make_record(target, 401)
    make_record(target, 402, facility='NoSuchTelescope')

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert "skipped 1 record(s) of facility 'NoSuchTelescope'" in job.stderr
    assert all(stored_bytes(tom_env, f) == f.content() for f in frames)


def test_target_id_limits_the_run_to_that_target(lco, tom_env):
    mine, other = make_target('mine'), make_target('other')
    frames = lco.add_request(501)
    lco.add_request(502)
    make_record(mine, 501)
    make_record(other, 502)

    job = run_job(tom_env, 'save_data', '--target_id', str(mine.pk))

    assert job.returncode == 0, job.stderr
    assert all(stored_bytes(tom_env, f) == f.content() for f in frames)
    assert lco.count('frames', 502) == 0


@pytest.mark.parametrize('bad_id', ['999999', 'abc', '-1'])
def test_unknown_target_id_is_one_line_and_exit_1(lco, tom_env, bad_id):
    job = run_job(tom_env, 'save_data', '--target_id', bad_id)

    assert job.returncode == 1
    assert job.stderr.strip().splitlines() == [f"CommandError: no target with id '{bad_id}'"]
    assert 'Traceback' not in job.stdout + job.stderr


@pytest.mark.parametrize('kind, fault, value, reason', [
    ('frames', 'stall', 0, 'no answer within 2 s (TOM_HTTP_TIMEOUT)'),
    ('frames', 'status', 500, 'HTTP 500 Internal Server Error'),
    ('frames', 'bad_json', 0, 'answer is not valid JSON'),
    ('download', 'stall', 0, 'no answer within 2 s (TOM_HTTP_TIMEOUT)'),
    ('download', 'stall_after', 1000, 'no answer within 2 s (TOM_HTTP_TIMEOUT)'),
    ('download', 'truncate', 1000, 'connection broken during the transfer'),
    ('download', 'status', 404, 'HTTP 404 Not Found'),
])
def test_one_failing_record_does_not_stop_the_others(lco, tom_env, kind, fault, value, reason):
    target = make_target()
    bad = lco.add_request(601, frames=1)
    good = lco.add_request(602, frames=2)
    make_record(target, 601)
    make_record(target, 602)
    lco.fault(kind, 601 if kind == 'frames' else bad[0].id, fault, value)

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 1
    assert all(stored_bytes(tom_env, f) == f.content() for f in good)
    failed = [line for line in job.stderr.splitlines() if line.startswith('FAILED')]
    assert len(failed) == 1 and 'observation 601 ' in failed[0] and reason in failed[0], job.stderr
    assert 'done: 2 record(s) checked, downloaded 2 product(s) (4096 bytes), 1 failure(s)' in job.stdout
    assert job.stderr.splitlines()[-1] == 'CommandError: 1 observation record(s) failed; see the lines above'
    assert 'Traceback' not in job.stderr
    assert DataProduct.objects.filter(product_id=str(bad[0].id)).count() == 0
    assert [p.name for p in files_under(media(tom_env))] == sorted(f.filename for f in good)


def test_rejected_credentials_are_named(lco, tom_env):
    lco.add_request(701)
    make_record(make_target(), 701)

    job = run_job({**tom_env, 'LCO_API_KEY': 'wrong'}, 'save_data')

    assert job.returncode == 1
    assert 'observation 701 ' in job.stderr and 'credentials rejected (HTTP 401)' in job.stderr


def test_slow_transfer_that_keeps_moving_completes(lco, tom_env):
    frames = lco.add_request(801, frames=1, size=4096)
    make_record(make_target(), 801)
    # 16 chunks 0.25 s apart: 4 s in all, twice TOM_HTTP_TIMEOUT, but never silent for 2 s.
    lco.fault('download', frames[0].id, 'slow', 0.25)

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()


def test_passing_server_errors_are_retried(lco, tom_env):
    frames = lco.add_request(851, frames=1)
    make_record(make_target(), 851)
    lco.fault('frames', 851, 'status', 503, times=1)
    lco.fault('download', frames[0].id, 'status', 502, times=1)

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()
    assert lco.count('frames', 851) == 2 and lco.count('download', frames[0].id) == 2


def test_failed_download_is_retried_by_the_next_run(lco, tom_env):
    frames = lco.add_request(901, frames=2)
    make_record(make_target(), 901)
    lco.fault('download', frames[1].id, 'status', 500)
    assert run_job(tom_env, 'save_data').returncode == 1
    del lco.faults[('download', frames[1].id)]

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert 'downloaded 1 product(s)' in job.stdout
    assert all(stored_bytes(tom_env, f) == f.content() for f in frames)


def test_empty_product_left_by_the_upstream_recipe_is_completed(lco, tom_env):
    target = make_target()
    frames = lco.add_request(951, frames=1)
    record = make_record(target, 951)
    # What TOM Toolkit's save_data_products leaves when its download fails: a row, no file.
    DataProduct.objects.create(product_id=str(frames[0].id), target=target, observation_record=record)

    job = run_job(tom_env, 'save_data')

    assert job.returncode == 0, job.stderr
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()
    assert DataProduct.objects.count() == 1


def test_kill_in_the_middle_of_a_download_loses_nothing(lco, tom_env):
    target = make_target()
    first = lco.add_request(1001, frames=1)
    frames = lco.add_request(1002, frames=2, size=256 * 1024)
    make_record(target, 1001)
    make_record(target, 1002)
    lco.fault('download', frames[1].id, 'stall_after', 160 * 1024)
    incoming = Path(tom_env['DATA_DIR']) / 'incoming'

    job = start_job({**tom_env, 'TOM_HTTP_TIMEOUT': '60'}, 'save_data')
    deadline = time.monotonic() + 60
    # The complete downloads are committed while the stalled one goes on (within seconds).
    while not (lco.count('download', frames[1].id) and any(p.stat().st_size for p in files_under(incoming))
               and DataProduct.objects.count() == 2):
        assert time.monotonic() < deadline and job.poll() is None, 'the download never started'
        time.sleep(0.05)
    job.kill()
    job.wait()

    assert stored_bytes(tom_env, first[0]) == first[0].content()
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()
    assert not DataProduct.objects.filter(product_id=str(frames[1].id)).exists()
    assert frames[1].filename not in [p.name for p in files_under(media(tom_env))]

    del lco.faults[('download', frames[1].id)]
    again = run_job(tom_env, 'save_data')

    assert again.returncode == 0, again.stderr
    assert 'removed 1 partial download(s) left by an interrupted run' in again.stdout
    assert 'downloaded 1 product(s)' in again.stdout
    assert stored_bytes(tom_env, frames[1]) == frames[1].content()
    assert files_under(incoming) == []


def test_dry_run_lists_and_changes_nothing(lco, tom_env):
    frames = lco.add_request(1101, frames=2)
    make_record(make_target(), 1101)

    job = run_job(tom_env, 'save_data', '--dry-run')

    assert job.returncode == 0, job.stderr
    for frame in frames:
        assert f'would download {frame.filename} (product {frame.id}) of observation 1101' in job.stdout
    assert 'would download 2 product(s)' in job.stdout
    assert DataProduct.objects.count() == 0
    assert files_under(media(tom_env)) == []
    assert all(lco.count('download', f.id) == 0 for f in frames)


def test_quiet_run_prints_only_errors(lco, tom_env):
    target = make_target()
    lco.add_request(1201)
    lco.add_request(1202)
    make_record(target, 1201)
    record = make_record(target, 1202)

    quiet = run_job(tom_env, 'save_data', '-v', '0')
    assert quiet.returncode == 0 and quiet.stdout == '' and quiet.stderr == ''

    DataProduct.objects.all().delete()
    lco.fault('frames', 1202, 'status', 500)
    failing = run_job(tom_env, 'save_data', '-v', '0')
    assert failing.returncode == 1 and failing.stdout == ''
    assert [line.split(':')[0] for line in failing.stderr.splitlines()] == [
        f'FAILED observation 1202 (LCORedirect, record {record.pk}, target SN 2026abc)', 'CommandError']


def test_long_runs_print_progress(lco, tom_env):
    target = make_target()
    for observation_id in (1301, 1302, 1303):
        lco.add_request(observation_id, frames=1)
        make_record(target, observation_id)

    job = run_job(tom_env, 'save_data', '--progress-interval', '0')

    assert job.returncode == 0, job.stderr
    progress = [line for line in job.stdout.splitlines() if line.startswith('progress:')]
    # Records download together: how many products are in by the first record's end varies.
    assert [line.split(',')[0] for line in progress] == ['progress: 1/3 records', 'progress: 2/3 records']
    assert all(line.endswith(' s') and '0 failure(s)' in line for line in progress), progress
    # (the last record is reported by the summary line)


def test_a_second_run_while_one_is_running_does_nothing(lco, tom_env):
    frames = lco.add_request(1401, frames=1)
    make_record(make_target(), 1401)
    lco.fault('download', frames[0].id, 'stall')
    first = start_job({**tom_env, 'TOM_HTTP_TIMEOUT': '60'}, 'save_data')
    deadline = time.monotonic() + 60
    while not lco.count('download', frames[0].id):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)

    second = run_job(tom_env, 'save_data')
    first.kill()
    first.wait()

    assert second.returncode == 0, second.stderr
    assert 'another save_data run holds' in second.stdout
    assert lco.count('download', frames[0].id) == 1
