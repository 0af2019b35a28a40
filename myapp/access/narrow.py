"""What a door takes out of a page before it is drawn: choices naming targets the user may
not view (TOM Toolkit's filters list every target)."""
from tom_targets.permissions import targets_for_user


def viewable_target_choices(field):
    def narrow(request, response):
        form = getattr((response.context_data or {}).get('filter'), 'form', None)
        if form is not None and field in form.fields:
            choices = form.fields[field]
            choices.queryset = targets_for_user(request.user, choices.queryset, 'view_target')
    return narrow
