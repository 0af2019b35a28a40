"""The doors of TOM Toolkit 3.1.0 this project closes, one entry per URL name: which view it
covers, what was open, and what it now asks of a request. Drop an entry when TOM Toolkit's
own view checks as much (docs/security.md says the same in words for its maintainers); the
permission matrix (tests/test_permission_matrix.py) shows whether anything is left open.

Each door asks, in this order: a login (`login`); staff (`staff`); POST for a view whose
other methods change data (`post_only`); that the user may view each target of `view`
(else 404, as if it did not exist); that the user may change each target of `change`, on
the methods that change data (`changing`, POST by default; else 403)."""
from dataclasses import dataclass

from myapp.access.narrow import viewable_target_choices
from myapp.access.objects import (
    comment_in_url,
    datum_in_url,
    product_in_url,
    record_in_request,
    record_in_url,
    target_in_request,
    target_in_url,
)

TT = 'TOM Toolkit 3.1.0'
WRITES = frozenset({'POST', 'PUT', 'PATCH', 'DELETE'})
EVERY_METHOD = frozenset({'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'})


@dataclass(frozen=True)
class Door:
    name: str                   # the URL's name, with its namespace
    covers: str                 # the view of TOM Toolkit it stands in front of
    why: str                    # what that view lets through
    login: bool = True
    staff: bool = False
    post_only: bool = False
    view: tuple = ()            # locators (myapp/access/objects.py) of targets to view
    change: tuple = ()          # locators of targets to change
    changing: frozenset = WRITES
    narrow: object = None       # (request, TemplateResponse): takes out what the user may not see
    gone: bool = False          # not served at all: a 404 for everyone


def _target(kwarg='pk'):
    return (target_in_url(kwarg),)


def viewed_and_changed(*locators):
    """A door's targets that must be viewable, and changeable on the methods that change: one
    tuple for both, so that the middleware finds them once."""
    return {'view': locators, 'change': locators}


DOORS = [
    # --- Django's admin, the API ----------------------------------------------------------
    Door('admin:login', 'Django 5.2 django.contrib.admin.sites.AdminSite.login',
         'a password-only login: anyone could sign in as staff past their second factor; everyone '
         'signs in on the TOM\'s own login page, and only staff reach the admin', staff=True),
    Door('api:targetlist-detail', f'{TT} tom_targets.api_views.TargetListViewSet',
         'its query names a field TargetList lacks: every request failed with a 500', gone=True),
    Door('api:dataproducts-list', f'{TT} tom_dataproducts.api_views.DataProductViewSet',
         'any user with an API token could upload a data product into any target', login=False,
         change=(target_in_request('target'),)),
    Door('api:dataproducts-detail', f'{TT} tom_dataproducts.api_views.DataProductViewSet',
         'a DELETE needed only the right to view the product\'s target', login=False,
         **viewed_and_changed(product_in_url('pk')), changing=frozenset({'DELETE'})),
    Door('api:reduceddatums-list', f'{TT} tom_dataproducts.api_views.ReducedDatumViewSet',
         'any user with an API token could add photometry to any target', login=False,
         change=(target_in_request('target'),)),
    Door('api:reduceddatums-detail', f'{TT} tom_dataproducts.api_views.ReducedDatumViewSet',
         'a DELETE needed only the right to view the datum\'s target', login=False,
         **viewed_and_changed(datum_in_url('pk')), changing=frozenset({'DELETE'})),
    # --- targets ------------------------------------------------------------------------
    Door('targets:detail', f'{TT} tom_targets.views.TargetDetailView',
         'answers 403 (a login page) for a private target, telling a stranger that it exists',
         login=False, view=_target()),
    Door('targets:merge', f'{TT} tom_targets.views.TargetMergeView',
         'no login or permission check: anyone could see both names and merge (delete) any target',
         **viewed_and_changed(target_in_url('pk1'), target_in_url('pk2')), changing=EVERY_METHOD),
    Door('targets:share', f'{TT} tom_targets.views.TargetShareView',
         'permission_required is set but never checked (FormView): anyone could read the name and '
         'send the target and its data to another TOM',
         **viewed_and_changed(target_in_url('pk')), changing=EVERY_METHOD),
    Door('targets:target-persistent-share-manage-form', f'{TT} tom_targets.views.TargetPersistentShareManageFormView',
         'an APIView without permission classes: anyone could read the target\'s name',
         **viewed_and_changed(target_in_url('target_pk')), changing=EVERY_METHOD),
    Door('targets:target-persistent-share-manage-table', f'{TT} tom_targets.views.TargetPersistentShareManageTable',
         'no login: anyone could list who the target is shared with',
         **viewed_and_changed(target_in_url('target_pk')), changing=EVERY_METHOD),
    Door('targets:persistent-share-manage-form', f'{TT} tom_targets.views.PersistentShareManageFormView',
         'an APIView without permission classes: no login'),
    Door('targets:persistent-share-manage-table', f'{TT} tom_targets.views.PersistentShareManageTable',
         'no login'),
    Door('targets:render-observation-table', f'{TT} tom_targets.views.render_observation_table',
         'any logged-in user could refresh (and read) the observations of any target', view=_target()),
    Door('user-delete', f'{TT} tom_common.views.UserDeleteView', 'an anonymous request failed with a 500'),
    Door('user-update', f'{TT} tom_common.views.UserUpdateView', 'an anonymous request failed with a 500'),
    Door('targets:seed', f'{TT} tom_targets.views.TargetSeedView',
         'any logged-in user could add 110 demonstration targets to the TOM', staff=True),
    # --- data products --------------------------------------------------------------------
    Door('dataproducts:delete', f'{TT} tom_dataproducts.views.DataProductDeleteView',
         'with TARGET_PERMISSIONS_ONLY its check_permissions answers False, which django-guardian '
         'reads as "nothing to check": anyone could delete any data product and its file',
         **viewed_and_changed(product_in_url('pk')), changing=EVERY_METHOD),
    Door('dataproducts:feature', f'{TT} tom_dataproducts.views.DataProductFeatureView',
         'no login: a GET by anyone changed which product a target features',
         **viewed_and_changed(product_in_url('pk')), changing=EVERY_METHOD),
    Door('dataproducts:share', f'{TT} tom_dataproducts.views.DataShareView',
         'no login or permission check: anyone could download or send away any product\'s data',
         **viewed_and_changed(product_in_url('dp_pk')), post_only=True),
    Door('dataproducts:share_all', f'{TT} tom_dataproducts.views.DataShareView',
         'no login or permission check: anyone could download or send away all of a target\'s data',
         **viewed_and_changed(target_in_url('tg_pk')), post_only=True),
    Door('dataproducts:save', f'{TT} tom_dataproducts.views.DataProductSaveView',
         'any logged-in user could save products into any target',
         **viewed_and_changed(record_in_url('pk')), post_only=True),
    Door('dataproducts:upload', f'{TT} tom_dataproducts.views.DataProductUploadView',
         'any logged-in user could upload data into any target; it has no page of its own (GET fails)',
         post_only=True,
         **viewed_and_changed(target_in_request('target'), record_in_request('observation_record'))),
    Door('dataproducts:update-reduced-data', f'{TT} tom_dataproducts.views.UpdateReducedDataView',
         'any logged-in user could re-ingest any target\'s data (or every target\'s), with a GET',
         **viewed_and_changed(target_in_request('target_id', every_when_missing=True)), changing=EVERY_METHOD),
    Door('dataproducts:single-target-data-service-query',
         f'{TT} tom_dataproducts.views.SingleTargetDataServiceQueryView',
         'any logged-in user could query a data service into any target',
         **viewed_and_changed(target_in_request('target_id')), changing=EVERY_METHOD),
    Door('dataproducts:group-detail', f'{TT} tom_dataproducts.views.DataProductGroupDetailView',
         'no login: anyone could list a group\'s products (private file names) and remove them from it',
         staff=True),
    Door('targets:share-group', f'{TT} tom_targets.views.TargetGroupingShareView',
         'no login or permission check; its page does not render (a template syntax error): '
         'only staff may send a group away, by POST', staff=True, post_only=True),
    Door('dataproducts:group-data', f'{TT} tom_dataproducts.views.DataProductGroupDataView',
         'lists every data product of the TOM, private ones too, to any logged-in user', staff=True),
    Door('dataproducts:group-delete', f'{TT} tom_dataproducts.views.DataProductGroupDeleteView',
         'any logged-in user could delete any data product group', staff=True),
    # --- observations ---------------------------------------------------------------------
    Door('observations:cancel', f'{TT} tom_observations.views.ObservationRecordCancelView',
         'any logged-in user could cancel any observation (with a GET)',
         **viewed_and_changed(record_in_url('pk')), changing=EVERY_METHOD),
    Door('observations:update', f'{TT} tom_observations.views.ObservationRecordUpdateView',
         'any logged-in user could edit any observation record',
         **viewed_and_changed(record_in_url('pk')), changing=EVERY_METHOD),
    Door('observations:create', f'{TT} tom_observations.views.ObservationCreateView',
         'any logged-in user could read any target\'s name and submit observations of it',
         **viewed_and_changed(target_in_request('target_id')), changing=EVERY_METHOD),
    Door('observations:add-existing', f'{TT} tom_observations.views.AddExistingObservationView',
         'any logged-in user could attach observation records to any target',
         **viewed_and_changed(target_in_request('target_id'))),
    Door('observations:list', f'{TT} tom_observations.views.ObservationListView',
         'its filter offers every target that has an observation, private ones too, by name',
         login=False, narrow=viewable_target_choices('target_id')),
    Door('observations:template-create', f'{TT} tom_observations.views.ObservationTemplateCreateView',
         'no login'),
    # --- calendar -------------------------------------------------------------------------
    Door('calendar:calendar', f'{TT} tom_calendar.views.render_calendar',
         'no login: the calendar names observations and their targets'),
    Door('calendar:create-event', f'{TT} tom_calendar.views.create_event', 'no login: anyone could add events'),
    Door('calendar:update-event', f'{TT} tom_calendar.views.update_event', 'no login: anyone could edit events'),
    Door('calendar:delete-event', f'{TT} tom_calendar.views.delete_event',
         'no login, and a GET deleted: a link or an image on another site could delete an event', post_only=True),
    Door('calendar:create-todo', f'{TT} tom_calendar.views.create_todo', 'no login', post_only=True),
    Door('calendar:update-todo', f'{TT} tom_calendar.views.update_todo', 'no login, and a GET changed it',
         post_only=True),
    # --- comments, data services ----------------------------------------------------------
    Door('comment-delete', f'{TT} tom_common.views.CommentDeleteView',
         'its confirmation page shows any comment, on a private target too, to any logged-in user',
         view=(comment_in_url('pk'),)),
    Door('comments-flag', 'django-contrib-comments 2.2 django_comments.views.moderation.flag',
         'its page shows any comment, on a private target too, to any logged-in user, who may flag it',
         view=(comment_in_url('comment_id'),)),
    Door('comments-post-comment', 'django-contrib-comments 2.2 django_comments.views.comments.post_comment',
         'anonymous comments, under any name'),
    Door('dataservices:run', f'{TT} tom_dataservices.views.RunQueryView',
         'no login: anyone could make the TOM query outside services'),
    Door('dataservices:run_saved', f'{TT} tom_dataservices.views.RunQueryView', 'no login'),
    Door('dataservices:update-data', f'{TT} tom_dataservices.views.update_data_from_query', 'no login'),
]

BY_NAME = {door.name: door for door in DOORS}
