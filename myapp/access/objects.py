"""How a door finds the targets a request is about (in its URL, its query or its form), and
whether a user may view or change them. A target's permissions in TOM Toolkit are its own
(`permissions`: OPEN, PUBLIC, PRIVATE) and django-guardian's per-object grants; a data product,
a reduced datum and an observation record belong to their target."""
import json

from tom_dataproducts.models import DataProduct, ReducedDatum
from tom_observations.models import ObservationRecord
from tom_targets.models import Target
from tom_targets.permissions import targets_for_user

EVERY_TARGET = 'every target'  # a request about all targets at once: staff only


def _number(value):
    """A primary key from untrusted text, or None when it is not one (no such object)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2 ** 63 else None


def target_in_url(kwarg):
    def locate(request, kwargs):
        return [_number(kwargs.get(kwarg))]
    return locate


def _owner(model, pk):
    """The target a data product, datum or record belongs to, or None when there is none."""
    return model.objects.filter(pk=pk).values_list('target_id', flat=True).first() if pk else None


def _owner_in_url(model, kwarg):
    def locate(request, kwargs):
        return [_owner(model, _number(kwargs.get(kwarg)))]
    return locate


def product_in_url(kwarg):
    return _owner_in_url(DataProduct, kwarg)


def record_in_url(kwarg):
    return _owner_in_url(ObservationRecord, kwarg)


def datum_in_url(kwarg):
    return _owner_in_url(ReducedDatum, kwarg)


def comment_in_url(kwarg):
    """The target a comment is about: the target itself, or the record or product it is on."""
    from django_comments.models import Comment

    owners = {Target: lambda pk: _number(pk), ObservationRecord: lambda pk: _owner(ObservationRecord, _number(pk)),
              DataProduct: lambda pk: _owner(DataProduct, _number(pk))}

    def locate(request, kwargs):
        comment = Comment.objects.filter(pk=_number(kwargs.get(kwarg))).select_related('content_type').first()
        if comment is None:
            return [None]
        owner = owners.get(comment.content_type.model_class())
        return [owner(comment.object_pk)] if owner else []
    return locate


def _field(request, field):
    """A form's, a JSON body's (the API's) or else the query string's FIELD."""
    if request.method != 'GET':
        if request.content_type == 'application/json':
            try:
                body = json.loads(request.body or b'{}')
            except ValueError:
                body = {}
            value = body.get(field) if isinstance(body, dict) else None
        else:
            value = request.POST.get(field)
        if value not in (None, ''):
            return value
    return request.GET.get(field)


def target_in_request(field, every_when_missing=False):
    """The target named by a query or form field; a request naming none is about no target,
    or, when every_when_missing, about every target."""
    def locate(request, kwargs):
        value = _field(request, field)
        if value in (None, ''):
            return [EVERY_TARGET] if every_when_missing else []
        return [_number(value)]
    return locate


def record_in_request(field):
    def locate(request, kwargs):
        value = _field(request, field)
        if value in (None, ''):
            return []
        return [_owner(ObservationRecord, _number(value))]
    return locate


def may(user, target_pk, action):
    """Whether user may ACTION (view_target, change_target) the target; False when there is
    no such target, so that a missing one and a forbidden one look alike."""
    if target_pk is None:
        return False
    if target_pk == EVERY_TARGET:
        return user.is_superuser
    return targets_for_user(user, Target.objects.filter(pk=target_pk), action).exists()
