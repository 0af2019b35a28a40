"""Bad input to a view of TOM Toolkit answers 400 with what was wrong, not 500: its views read
forms and query strings without checking them (an empty form raises KeyError, TypeError or
ValueError deep inside), which a visitor can send at will. A URL naming no such object,
facility or data service answers 404; an outside service (a facility's archive, SIMBAD) that
does not answer, 502. Each is logged with its traceback, so a real fault still reaches the
operator."""
import logging

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound
from django.urls import NoReverseMatch
from pyvo.dal import DALServiceError
from requests import RequestException

from myapp.failures import one_line

logger = logging.getLogger('tom.web')
# What TOM Toolkit 3.1.0's views raise on a missing or malformed field (MultiValueDictKeyError is
# a KeyError; UnboundLocalError: TargetFacilitySelectionView reads a variable only a valid form
# sets; NoReverseMatch: DataShareView redirects to the target its form did not name;
# NotImplementedError: a cancel asked of a facility that cannot cancel).
BAD_INPUT = (KeyError, ValueError, TypeError, ValidationError, UnboundLocalError, NoReverseMatch, NotImplementedError)
# A facility or data service named in the URL that the TOM does not have.
UNKNOWN = (ObjectDoesNotExist, ImportError)
UPSTREAM = (RequestException, DALServiceError)
# TOM Toolkit's views, the comments app its target page uses, and Django's admin (whose forms
# call TOM Toolkit's models' validation, e.g. ReducedDatum's, which reads a target not given).
PACKAGES = ('tom_', 'django_comments', 'django.contrib.admin')


def _view_module(request):
    match = request.resolver_match
    if match is None:
        return ''
    view = getattr(match.func, 'view_class', None) or getattr(match.func, 'cls', None) or match.func
    return view.__module__


class BadInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not _view_module(request).startswith(PACKAGES):
            return None  # our own views: a fault is a fault
        what = one_line(exception)
        # A form without its related object (X.target.RelatedObjectDoesNotExist) is bad input,
        # not an unknown URL, though Django makes it an ObjectDoesNotExist as well.
        missing_field = isinstance(exception, AttributeError) and isinstance(exception, ObjectDoesNotExist)
        if isinstance(exception, UNKNOWN) and not missing_field:
            answer = HttpResponseNotFound(f'Not found: {what}\n', content_type='text/plain')
        elif isinstance(exception, UPSTREAM):
            answer = HttpResponse(f'An outside service did not answer: {what}\n', status=502,
                                  content_type='text/plain')
        elif isinstance(exception, BAD_INPUT) or missing_field:
            answer = HttpResponseBadRequest(f'This request could not be handled: {what}\n', content_type='text/plain')
        else:
            return None
        logger.warning('%s %s answered %s: %s', request.method, request.path, answer.status_code, what, exc_info=True)
        return answer
