"""Running saved queries unattended: tom_dataservices' data service queries and, when
tom_alerts is installed, its broker queries. TOM Toolkit runs one at a time by hand
(`rundataquery ID`, `runbrokerquery NAME`) and logs failures without failing; here each
query either creates its targets or raises, with a one-line reason, for the job to name."""
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils import timezone

from myapp.failures import one_line


class QueryFailed(Exception):
    """A saved query did not run to the end; the message says why."""


def saved_queries():
    """(label, runner) for every saved query, data service queries first, oldest first."""
    from tom_dataservices.models import DataServiceQuery

    found = [(f'data service query {q.name!r} ({q.data_service}, id {q.pk})', q, run_data_service_query)
             for q in DataServiceQuery.objects.order_by('pk')]
    if apps.is_installed('tom_alerts'):
        from tom_alerts.models import BrokerQuery

        found += [(f'broker query {q.name!r} ({q.broker}, id {q.pk})', q, run_broker_query)
                  for q in BrokerQuery.objects.order_by('pk')]
    return found


def run_data_service_query(query):
    """Runs one DataServiceQuery the way `rundataquery` does; returns the targets it gave."""
    from tom_dataservices.dataservices import MissingDataException, get_data_service_class

    service = _call('data service', lambda: get_data_service_class(query.data_service)())
    parameters = _call('building the query', lambda: service.build_query_parameters(query.parameters))
    query.last_run = timezone.now()
    query.save(update_fields=['last_run'])
    results = _call('querying', lambda: service.query_targets(parameters))
    targets = []
    for result in results:
        target = _call('creating a target', service.to_target, result)
        if not target:
            continue
        try:
            service.to_reduced_datums(target, result.get('reduced_datums'))
        except MissingDataException:
            data = _call(f'fetching data of {target.name}', service.query_reduced_data, target)
            _call(f'saving data of {target.name}', service.to_reduced_datums, target, data)
        except Exception as error:
            raise QueryFailed(f'saving data of {target.name}: {_reason(error)}')
        targets.append(target)
    return targets


def run_broker_query(query):
    """Runs one BrokerQuery the way `runbrokerquery` does; returns the new targets. A target
    the TOM already has is left as it is (as upstream, where it is a warning)."""
    from tom_alerts.alerts import get_service_class
    from tom_targets.models import Target

    broker = _call('broker', lambda: get_service_class(query.broker)())
    alerts = _call('fetching alerts', lambda: list(broker.fetch_alerts(query.parameters)))
    query.last_run = timezone.now()
    query.save(update_fields=['last_run'])
    created = []
    for alert in alerts:
        generic = _call('reading an alert', broker.to_generic_alert, alert)
        target, extras, aliases = _call('reading an alert', generic.to_target)
        if Target.objects.filter(name=target.name).exists():
            continue
        try:
            target.full_clean()
            target.save(extras=extras, names=aliases)
        except ValidationError as error:
            raise QueryFailed(f'target {target.name}: {_reason(error)}')
        created.append(target)
    return created


def _call(step, function, *args):
    """function(*args), or QueryFailed naming the step and why it failed."""
    try:
        return function(*args)
    except Exception as error:
        raise QueryFailed(f'{step}: {_reason(error)}')


def _reason(error):
    return one_line(f'{type(error).__name__}: {error}')
