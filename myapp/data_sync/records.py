"""Choosing, in the database, the observation records whose products to list.

A record is a candidate when its facility can have data and says its status is terminal.
Of those, unless `--all`, only the ones whose products may still change: never listed, last
listing (or a download, or a hook) failed, or not yet listed once after its settle window.
Settled records cost no archive request and no query of their own: the database filters
them out, and the rest come in batches of a fixed size, one query per batch.
"""
from datetime import timedelta

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce
from tom_observations.models import ObservationRecord

from myapp.database import reconnect_if_lost


def finished(facilities, target=None):
    """Records in one of their facility's terminal states (asked of each facility once)."""
    terminal = Q(pk__in=[])
    for name, facility in facilities.items():
        terminal |= Q(facility=name, status__in=facility.get_terminal_observing_states())
    records = ObservationRecord.objects.filter(terminal)
    return records if target is None else records.filter(target=target)


def unsettled(records, settle_hours):
    """Those of records whose products may still change (see the module's docstring).

    The settle window runs from the observation's end as its facility reported it, or from
    our first listing when the facility gives none.
    """
    window_closes = ExpressionWrapper(
        Coalesce(F('scheduled_end'), F('product_listing__first_listed_at')) + timedelta(hours=settle_hours),
        output_field=DateTimeField(),
    )
    return records.filter(
        Q(product_listing__isnull=True)
        | Q(product_listing__succeeded=False)
        | Q(product_listing__listed_at__lt=window_closes)
    )


def in_batches(records, size):
    """Lists of up to `size` records, each with its target, one query per list.
    Keyset pagination: memory stays flat however many records there are."""
    records = records.select_related('target').order_by('pk')
    last = 0
    while True:
        reconnect_if_lost()
        batch = list(records.filter(pk__gt=last)[:size])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def of_unknown_facilities(known_names, target=None):
    """{facility name: number of records} for records no configured facility can handle."""
    records = ObservationRecord.objects.exclude(facility__in=list(known_names))
    if target is not None:
        records = records.filter(target=target)
    counts = records.values('facility').annotate(n=Count('pk')).order_by('facility')
    return {row['facility']: row['n'] for row in counts}
