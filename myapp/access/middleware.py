"""Applies the doors (myapp/access/doors.py) before TOM Toolkit's views run: the request is
refused before anything is read or changed, in the answer a browser or a script expects."""
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.settings import api_settings

from myapp.access.doors import BY_NAME
from myapp.access.objects import may


def refusal(door, request, kwargs):
    """None when the door lets the request through; else the answer to give."""
    if door.gone:
        raise Http404(f'Not served: {door.why}')
    user = _api_user(request) if door.name.startswith('api:') else request.user
    if door.login and not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if door.staff and not user.is_staff:
        raise PermissionDenied('Only staff may do this.')
    if door.post_only and request.method != 'POST':
        return HttpResponseNotAllowed(['POST'])
    # Each locator once: a door that views and changes the same targets looks them up once.
    found = {locate: locate(request, kwargs) for locate in {*door.view, *door.change}}
    for target in _targets(door.view, found):
        if not may(user, target, 'view_target'):
            raise Http404('No such target')  # the same answer whether it exists or not
    if request.method in door.changing:
        for target in _targets(door.change, found):
            if not may(user, target, 'change_target'):
                raise PermissionDenied('You may not change this target.')
    return None


def _targets(locators, found):
    return [target for locate in locators for target in found[locate]]


class DoorsMiddleware:
    """After authentication and CSRF: the request's user is known and a forged POST has
    already been refused."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        door = _door(request)
        return refusal(door, request, view_kwargs) if door else None

    def process_template_response(self, request, response):
        door = _door(request)
        if door and door.narrow:
            door.narrow(request, response)
        return response


def _api_user(request):
    """Who an API request comes from: a script's token is read by the REST framework inside
    the view, after this door; read it here the same way (the session's user is known)."""
    if request.user.is_authenticated:
        return request.user
    for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication, SessionAuthentication):
            continue
        try:
            found = authentication().authenticate(request)
        except AuthenticationFailed:
            break  # the view answers it, as the REST framework does
        if found:
            return found[0]
    return request.user


def _door(request):
    match = request.resolver_match
    return BY_NAME.get(match.view_name) if match else None
