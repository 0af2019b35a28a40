"""Choosing, in the database, the observation records whose data can be downloaded."""
from django.db.models import Count
from tom_observations.models import ObservationRecord


def finished_records(facilities, target=None):
    """Records of the given facilities in one of their facility's terminal states, as a
    list of (facility, record) pairs. The states are asked of each facility once, and the
    database does the filtering (the upstream recipe loads every record and asks each)."""
    records = ObservationRecord.objects.select_related('target').order_by('pk')
    if target is not None:
        records = records.filter(target=target)
    return [
        (facility, record)
        for name, facility in facilities.items()
        for record in records.filter(facility=name, status__in=facility.get_terminal_observing_states())
    ]


def records_of_unknown_facilities(known_names, target=None):
    """{facility name: number of records} for records no configured facility can handle."""
    records = ObservationRecord.objects.exclude(facility__in=list(known_names))
    if target is not None:
        records = records.filter(target=target)
    counts = records.values('facility').annotate(n=Count('pk')).order_by('facility')
    return {row['facility']: row['n'] for row in counts}
