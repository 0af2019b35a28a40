"""Data products in an S3-compatible bucket (django-storages), against an S3 server on
127.0.0.1 (moto's standalone server, spoken to over HTTP like any S3): save_data's guarantees
hold there, and the web hands a logged-in user a short-lived link, an anonymous one nothing."""
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm
from tom_dataproducts.models import DataProduct

from tests.conftest import files_under, make_record, make_target, run_job, start_job, start_s3_server

BUCKET = 'tom-data'
CREDENTIALS = {'AWS_ACCESS_KEY_ID': 'tests', 'AWS_SECRET_ACCESS_KEY': 'tests-secret', 'AWS_S3_REGION_NAME': 'us-east-1'}


@pytest.fixture
def s3():
    url, stop = start_s3_server()
    try:
        client = boto3.client('s3', endpoint_url=url, region_name='us-east-1', aws_access_key_id='tests',
                              aws_secret_access_key='tests-secret')
        client.create_bucket(Bucket=BUCKET)
        yield url, client
    finally:
        stop()


@pytest.fixture
def s3_env(tom_env, s3):
    url, _ = s3
    return {**tom_env, **CREDENTIALS, 'AWS_STORAGE_BUCKET_NAME': BUCKET, 'AWS_S3_ENDPOINT_URL': url}


def objects(client):
    listed = client.list_objects_v2(Bucket=BUCKET).get('Contents', [])
    return {item['Key']: client.get_object(Bucket=BUCKET, Key=item['Key'])['Body'].read() for item in listed}


def test_save_data_stores_every_frame_once_in_the_bucket(lco, s3, s3_env):
    _, client = s3
    frames = lco.add_request(4001, frames=3)
    make_record(make_target(), 4001)

    first = run_job(s3_env, 'save_data')
    second = run_job(s3_env, 'save_data', '--all')

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    stored = objects(client)
    rows = {row.product_id: row.data.name for row in DataProduct.objects.all()}
    assert sorted(rows) == sorted(str(f.id) for f in frames)
    assert {rows[str(f.id)]: f.content() for f in frames} == stored
    assert all(lco.count('download', f.id) == 1 for f in frames), 'a stored frame was downloaded again'
    assert files_under(Path(s3_env['DATA_DIR']) / 'media') == []


def sizes(directory):
    """Sizes of the files in directory, as they come and go."""
    found = []
    for path in files_under(directory):
        try:
            found.append(path.stat().st_size)
        except FileNotFoundError:
            pass
    return found


def test_a_kill_while_a_product_is_stored_leaves_no_row_without_its_object(lco, s3, s3_env):
    _, client = s3
    frames = lco.add_request(4101, frames=1, size=24 * 1024 * 1024)
    make_record(make_target(), 4101)
    incoming = Path(s3_env['DATA_DIR']) / 'incoming'

    # Killed as soon as the file is all downloaded: while it is uploaded, or committed.
    job = start_job(s3_env, 'save_data')
    deadline = time.monotonic() + 60
    while frames[0].size not in sizes(incoming) and job.poll() is None:
        assert time.monotonic() < deadline, 'the download never completed'
        time.sleep(0.01)
    job.kill()
    job.wait()

    for row in DataProduct.objects.all():
        assert objects(client).get(row.data.name) == frames[0].content(), 'a row without its complete object'
    again = run_job(s3_env, 'save_data')
    assert again.returncode == 0, again.stderr
    row = DataProduct.objects.get(product_id=str(frames[0].id))
    assert objects(client)[row.data.name] == frames[0].content()
    assert files_under(incoming) == []


@pytest.mark.django_db
def test_the_web_links_a_logged_in_user_to_the_object_and_an_anonymous_one_nowhere(s3, settings, client):
    url, s3_client = s3
    settings.STORAGES = {**settings.STORAGES, 'default': {
        'BACKEND': 'storages.backends.s3.S3Storage',
        'OPTIONS': {'bucket_name': BUCKET, 'endpoint_url': url, 'region_name': 'us-east-1',
                    'access_key': 'tests', 'secret_key': 'tests-secret', 'addressing_style': 'path',
                    'signature_version': 's3v4', 'querystring_auth': True, 'querystring_expire': 120,
                    'file_overwrite': True}}}
    target = make_target()
    s3_client.put_object(Bucket=BUCKET, Key='sn-2026abc/lco/frame.fits', Body=b'photons')
    DataProduct.objects.create(product_id='p1', target=target, data='sn-2026abc/lco/frame.fits')
    user = User.objects.create_user('astronomer', password='pw')
    assign_perm('tom_targets.view_target', user, target)

    anonymous = client.get('/data/sn-2026abc/lco/frame.fits')
    client.force_login(user)
    answer = client.get('/data/sn-2026abc/lco/frame.fits')

    assert anonymous.status_code == 302 and anonymous['Location'].startswith('/accounts/login/')
    assert answer.status_code == 302
    link = answer['Location']
    assert link.startswith(f'{url}/{BUCKET}/sn-2026abc/lco/frame.fits?')
    assert parse_qs(urlsplit(link).query)['X-Amz-Expires'] == ['120']
    assert requests.get(link, timeout=10).content == b'photons'
    assert requests.get(link.split('?')[0], timeout=10).status_code == 403, 'the object is public'

