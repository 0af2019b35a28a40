"""The doors TOM Toolkit 3.1.0 leaves open, closed (myapp/access/doors.py), and the features
behind them kept for whom may use them: what is left in the database and on disk after each
request, not only its status code. The permission matrix walks every URL; these follow the
issue's own cases through to their end."""
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from guardian.shortcuts import assign_perm
from tom_calendar.models import CalendarEvent
from tom_dataproducts.models import DataProduct
from tom_targets.models import Target, TargetName

pytestmark = pytest.mark.django_db


@pytest.fixture
def private(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / 'media'
    target = Target.objects.create(name='SN 2026priv', type='SIDEREAL', ra=1, dec=2,
                                   permissions=Target.Permissions.PRIVATE)
    product = DataProduct.objects.create(product_id='42', target=target, data_product_type='fits_file')
    product.data.save('frame.fits', ContentFile(b'SIMPLE  = T'))
    target.product = product
    return target


@pytest.fixture
def other():
    return Target.objects.create(name='SN 2026oth', type='SIDEREAL', ra=3, dec=4,
                                 permissions=Target.Permissions.PRIVATE)


def browser(user=None):
    """A browser's client: CSRF enforced, its token taken from a page as a browser's form does."""
    client = Client(enforce_csrf_checks=True)
    if user:
        client.force_login(user)
    client.get('/accounts/login/')
    return client


def post(client, path, data=None):
    return client.post(path, {**(data or {}), 'csrfmiddlewaretoken': client.cookies['csrftoken'].value})


def user_with(*grants):
    """A user holding each (permission, target) grant."""
    user = User.objects.create_user(f'user{User.objects.count()}', password='pw-for-tests-only')
    for permission, target in grants:
        assign_perm(f'tom_targets.{permission}', user, target)
    return user


def file_of(product):
    return Path(product.data.path)


def test_an_anonymous_delete_of_a_data_product_leaves_its_row_and_its_file(private):
    response = post(browser(), f'/dataproducts/data/{private.product.pk}/delete/')

    assert response.status_code == 302 and response['Location'].startswith('/accounts/login/')
    assert DataProduct.objects.filter(pk=private.product.pk).exists()
    assert file_of(private.product).read_bytes() == b'SIMPLE  = T'


def test_a_user_who_may_only_view_the_target_cannot_delete_its_product(private):
    client = browser(user_with(('view_target', private)))

    post(client, f'/dataproducts/data/{private.product.pk}/delete/')

    assert DataProduct.objects.filter(pk=private.product.pk).exists()
    assert file_of(private.product).exists()


def test_a_stranger_is_told_there_is_no_such_product(private):
    client = browser(user_with())

    assert client.get(f'/dataproducts/data/{private.product.pk}/delete/').status_code == 404
    assert post(client, f'/dataproducts/data/{private.product.pk}/delete/').status_code == 404
    assert file_of(private.product).exists()


@pytest.mark.parametrize('who', ['staff', 'may change the target'])
def test_staff_and_whoever_may_change_the_target_delete_a_product_and_its_file(private, who):
    user = (User.objects.create_superuser('pi', password='pw-for-tests-only') if who == 'staff'
            else user_with(('view_target', private), ('change_target', private)))
    path = file_of(private.product)

    response = post(browser(user), f'/dataproducts/data/{private.product.pk}/delete/')

    assert response.status_code == 302
    assert not DataProduct.objects.filter(pk=private.product.pk).exists()
    assert not path.exists()


def test_nobody_merges_targets_without_the_right_to_change_both(private, other):
    data = {'name_select': private.pk, 'confirm': '1'}
    post(browser(), f'/targets/merge/{private.pk}/{other.pk}', data)
    post(browser(user_with(('view_target', private), ('change_target', private), ('view_target', other))),
         f'/targets/merge/{private.pk}/{other.pk}', data)

    assert Target.objects.filter(pk__in=[private.pk, other.pk]).count() == 2


def test_whoever_may_change_both_targets_merges_them(private, other):
    user = user_with(*[(permission, target) for target in (private, other)
                       for permission in ('view_target', 'change_target')])

    response = post(browser(user), f'/targets/merge/{private.pk}/{other.pk}', {'name_select': private.pk,
                                                                                'confirm': '1'})

    assert response.status_code == 302
    assert not Target.objects.filter(pk=other.pk).exists()
    assert TargetName.objects.filter(target=private, name='SN 2026oth').exists()


def test_the_merge_page_shows_no_name_to_whom_may_not_view(private, other):
    for client in (browser(), browser(user_with())):
        response = client.get(f'/targets/merge/{private.pk}/{other.pk}')
        assert b'SN 2026' not in response.content


def test_a_private_target_s_pages_answer_404_to_whom_may_not_view_it(private):
    client = browser(user_with())
    for path in (f'/targets/{private.pk}/', f'/targets/{private.pk}/share/',
                 f'/targets/{private.pk}/persistentshare/manage/'):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b'SN 2026priv' not in response.content


@pytest.fixture
def event():
    now = timezone.now()
    return CalendarEvent.objects.create(title='observing night', start_time=now, end_time=now + timedelta(hours=1))


def test_a_calendar_event_is_not_deleted_by_a_get_nor_by_an_anonymous_post(event):
    assert browser().get(f'/calendar/delete/{event.pk}/').status_code == 302
    assert browser(user_with()).get(f'/calendar/delete/{event.pk}/').status_code == 405
    post(browser(), f'/calendar/delete/{event.pk}/')
    post(browser(), '/calendar/create/', {'title': 'spam', 'start_time': '2026-12-06 20:00',
                                          'end_time': '2026-12-06 21:00'})

    assert list(CalendarEvent.objects.values_list('title', flat=True)) == ['observing night']


def test_a_logged_in_user_deletes_a_calendar_event_by_post(event):
    post(browser(user_with()), f'/calendar/delete/{event.pk}/')

    assert not CalendarEvent.objects.exists()


def test_an_empty_form_answers_400_with_what_was_wrong_and_stores_nothing():
    response = post(browser(User.objects.create_superuser('pi', password='pw-for-tests-only')), '/targets/create/')

    assert response.status_code == 400
    assert response.content.startswith(b'This request could not be handled: ')
    assert not Target.objects.exists()


def api(user):
    """A script's client: the user's API token, no session, no CSRF."""
    from rest_framework.authtoken.models import Token

    return Client(HTTP_AUTHORIZATION=f'Token {Token.objects.get_or_create(user=user)[0].key}')


def test_through_the_api_only_whoever_may_change_the_target_deletes_a_product(private):
    viewer = api(user_with(('view_target', private)))

    assert viewer.delete(f'/api/dataproducts/{private.product.pk}/').status_code == 403
    assert api(user_with()).delete(f'/api/dataproducts/{private.product.pk}/').status_code == 404
    assert DataProduct.objects.filter(pk=private.product.pk).exists()

    editor = api(user_with(('view_target', private), ('change_target', private)))
    assert editor.delete(f'/api/dataproducts/{private.product.pk}/').status_code == 204
    assert not DataProduct.objects.filter(pk=private.product.pk).exists()


def test_through_the_api_no_one_adds_photometry_to_a_target_they_may_not_change(private):
    from tom_dataproducts.models import REDUCED_DATUM_MODELS

    def stored():
        return sum(model.objects.filter(target=private).count() for model in REDUCED_DATUM_MODELS)

    datum = {'target': private.pk, 'data_type': 'photometry', 'source_name': 'me',
             'timestamp': '2026-12-06T00:00:00Z', 'value': {'magnitude': 12.0, 'error': 0.1, 'filter': 'r'}}
    for client in (api(user_with()), api(user_with(('view_target', private)))):
        assert client.post('/api/reduceddatums/', datum, content_type='application/json').status_code == 403
    assert stored() == 0

    staff = api(User.objects.create_superuser('pi', password='pw-for-tests-only'))
    assert staff.post('/api/reduceddatums/', datum, content_type='application/json').status_code == 201
    assert stored() == 1


def test_the_admin_s_password_only_login_sends_everyone_to_the_tom_s_own():
    """Django's admin login would take a staff password past the second factor."""
    User.objects.create_superuser('pi', password='the staff password')
    stranger = user_with()
    anonymous, client = browser(), browser(stranger)

    first = anonymous.get('/admin/login/')
    taken = post(anonymous, '/admin/login/', {'username': 'pi', 'password': 'the staff password'})
    over = post(client, '/admin/login/', {'username': 'pi', 'password': 'the staff password'})

    assert first.status_code == taken.status_code == 302 and first['Location'].startswith('/accounts/login/')
    assert '_auth_user_id' not in anonymous.session
    assert over.status_code == 302 and client.session['_auth_user_id'] == str(stranger.pk)
