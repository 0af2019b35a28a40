"""The web side of the product: its health URL and data product files behind a login."""
import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from guardian.shortcuts import assign_perm
from tom_dataproducts.models import DataProduct
from tom_targets.models import Target

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    target = Target.objects.create(name='SN 2026xyz', type='SIDEREAL', ra=1, dec=2,
                                   permissions=Target.Permissions.PRIVATE)
    product = DataProduct.objects.create(product_id='42', target=target)
    product.data.save('frame.fits', ContentFile(b'SIMPLE  = T'))
    return product


def test_health_answers_ok_with_the_database_whatever_the_host(client):
    response = client.get('/health/', HTTP_HOST='not-an-allowed-host.example')

    assert response.status_code == 200
    assert response.json() == {'status': 'ok'}


def test_anonymous_request_for_a_file_gets_the_login_page(client, product):
    response = client.get(product.data.url)

    assert response.status_code == 302
    assert response['Location'].startswith('/accounts/login/')


def test_user_who_may_see_the_target_downloads_the_file(client, product):
    user = User.objects.create_user('astro', password='pw-for-tests-only')
    assign_perm('tom_targets.view_target', user, product.target)
    client.force_login(user)

    response = client.get(product.data.url)

    assert response.status_code == 200
    assert b''.join(response.streaming_content) == b'SIMPLE  = T'


def test_user_who_may_not_see_the_target_gets_404(client, product):
    client.force_login(User.objects.create_user('stranger', password='pw-for-tests-only'))

    assert client.get(product.data.url).status_code == 404


def test_file_of_no_data_product_is_not_served(client, product, tmp_path):
    (tmp_path / 'stray.txt').write_text('not a product')
    client.force_login(User.objects.create_superuser('admin', password='pw-for-tests-only'))

    assert client.get('/data/stray.txt').status_code == 404
    assert client.get(product.data.url).status_code == 200


def test_a_product_s_thumbnail_is_served_to_whoever_may_see_the_product_only(client, product):
    """The data list shows each FITS frame's preview (DataProduct.thumbnail) beside "Open in JS9"."""
    product.thumbnail.save('frame_tb.jpg', ContentFile(b'\xff\xd8 a jpeg'))
    user = User.objects.create_user('astro', password='pw-for-tests-only')
    client.force_login(User.objects.create_user('stranger', password='pw-for-tests-only'))
    assert client.get(product.thumbnail.url).status_code == 404

    assign_perm('tom_targets.view_target', user, product.target)
    client.force_login(user)
    response = client.get(product.thumbnail.url)

    assert response.status_code == 200
    assert b''.join(response.streaming_content) == b'\xff\xd8 a jpeg'


@pytest.mark.django_db(transaction=True)
def test_health_says_the_database_is_down_and_nothing_about_it(client, caplog):
    """The driver's error names the database's host, port and user: for the log, not for anyone."""
    from django.db import connection

    connection.close()
    name = connection.settings_dict['NAME']
    connection.settings_dict['NAME'] = '/no-such-folder/db-host-5432/db.sqlite3'
    try:
        response = client.get('/health/')
    finally:
        connection.close()
        connection.settings_dict['NAME'] = name

    assert response.status_code == 503
    assert response.json() == {'status': 'error'}
    assert any('the database cannot be reached' in record.getMessage() for record in caplog.records)
