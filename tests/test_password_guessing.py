"""Password guessing is throttled wherever a password is taken: the login form and
/api/token-auth/ count failures per account and per client address in the database every web
worker shares (django-axes), lock for LOGIN_LOCK_WINDOW, and say so in a log line; the API
takes no password at all (HTTP Basic is off). A forwarded address counts only behind as many
proxies as TRUSTED_PROXIES says."""
import base64
import logging

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db
PASSWORD = 'the right password, at last'
LIMIT = 5  # LOGIN_FAILURE_LIMIT's default


@pytest.fixture(autouse=True)
def no_earlier_failures():
    """django-allauth keeps its own count of login failures in the cache (a folder that outlives
    a test): start from none, so that what locks below is django-axes' count."""
    cache.clear()


@pytest.fixture
def pi():
    return User.objects.create_user('pi', password=PASSWORD)


def login_form(client, username, password, **headers):
    client.get('/accounts/login/')
    return client.post('/accounts/login/', {'login': username, 'password': password}, **headers)


def token_auth(client, username, password, **headers):
    return client.post('/api/token-auth/', {'username': username, 'password': password}, **headers)


def logged_in(client):
    return '_auth_user_id' in client.session


def test_the_login_form_locks_an_account_after_five_failures_even_for_the_right_password(pi, caplog):
    client = Client()
    for _ in range(LIMIT):
        login_form(client, 'pi', 'a guess')
    with caplog.at_level(logging.WARNING):
        response = login_form(client, 'pi', PASSWORD)

    assert not logged_in(client)
    assert response.status_code in (200, 429)  # the form again, or django-axes' lock page
    assert any('Locking out' in record.getMessage() and '"pi"' in record.getMessage() for record in caplog.records)


def test_token_auth_locks_after_five_failures_and_hands_out_no_token(pi):
    client = Client()
    for _ in range(LIMIT):
        assert token_auth(client, 'pi', 'a guess').status_code == 400
    response = token_auth(client, 'pi', PASSWORD)

    assert response.status_code in (400, 429)
    assert 'token' not in response.content.decode()
    assert AccessAttempt.objects.filter(username='pi', failures_since_start__gte=LIMIT).exists()


def test_failures_at_one_door_count_at_the_other(pi):
    """The same account, the same count: three guesses by form and three by API lock it."""
    client = Client()
    for _ in range(3):
        login_form(client, 'pi', 'a guess')
    for _ in range(3):
        token_auth(client, 'pi', 'a guess')

    assert token_auth(client, 'pi', PASSWORD).status_code in (400, 429)
    login_form(client, 'pi', PASSWORD)
    assert not logged_in(client)


def test_one_address_guessing_many_accounts_is_locked_out(pi):
    client = Client(REMOTE_ADDR='203.0.113.9')
    for number in range(LIMIT):
        token_auth(client, f'user{number}', 'a guess')

    assert token_auth(client, 'pi', PASSWORD).status_code in (400, 429)
    assert token_auth(Client(REMOTE_ADDR='203.0.113.10'), 'pi', PASSWORD).status_code == 200


def test_a_forwarded_address_is_not_believed_without_a_trusted_proxy(pi):
    """Rotating X-Forwarded-For does not get an attacker a fresh count."""
    client = Client(REMOTE_ADDR='203.0.113.9')
    for number in range(LIMIT):
        token_auth(client, f'user{number}', 'a guess', HTTP_X_FORWARDED_FOR=f'198.51.100.{number}')

    assert token_auth(client, 'pi', PASSWORD, HTTP_X_FORWARDED_FOR='198.51.100.99').status_code in (400, 429)


def test_behind_a_trusted_proxy_the_address_it_saw_counts(pi, settings):
    settings.TRUSTED_PROXIES = 1
    proxy = Client(REMOTE_ADDR='10.0.0.2')
    for number in range(LIMIT):
        token_auth(proxy, f'user{number}', 'a guess', HTTP_X_FORWARDED_FOR='spoofed, 203.0.113.9')

    assert token_auth(proxy, 'pi', PASSWORD, HTTP_X_FORWARDED_FOR='203.0.113.9').status_code in (400, 429)
    assert token_auth(proxy, 'pi', PASSWORD, HTTP_X_FORWARDED_FOR='203.0.113.10').status_code == 200


def test_a_login_resets_the_account_s_count(pi):
    client = Client()
    for _ in range(LIMIT - 1):
        token_auth(client, 'pi', 'a guess')
    login_form(client, 'pi', PASSWORD)
    assert logged_in(client)
    for _ in range(LIMIT - 1):
        token_auth(Client(), 'pi', 'a guess')

    assert token_auth(Client(), 'pi', PASSWORD).status_code == 200


def test_the_api_takes_no_password_only_a_token(pi):
    """HTTP Basic would take a password on every request, unthrottled and past two-factor."""
    basic = 'Basic ' + base64.b64encode(f'pi:{PASSWORD}'.encode()).decode()
    client = Client()

    assert client.get('/api/jobs/', HTTP_AUTHORIZATION=basic).status_code == 401
    token = Token.objects.get_or_create(user=pi)[0]
    assert client.get('/api/jobs/', HTTP_AUTHORIZATION=f'Token {token.key}').status_code == 200
