"""The --target_id option our jobs share."""
from django.core.management.base import CommandError
from tom_targets.models import Target


def target_option(target_id):
    """The target named by --target_id, None without one; a one-line error for a bad id."""
    if target_id is None:
        return None
    try:
        return Target.objects.get(pk=int(target_id))
    except (ValueError, Target.DoesNotExist):
        raise CommandError(f'no target with id {target_id!r}')
