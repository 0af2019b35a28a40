"""The TOM the permission matrix runs against: real rows of everything a URL can name, a
private target holding a data product with its file, and four kinds of visitor."""
from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.sites.models import Site
from django.core.files.base import ContentFile
from django.middleware.csrf import _get_new_csrf_string
from django.utils import timezone
from django_comments.models import Comment
from django_tasks.backends.database.models import DBTaskResult
from guardian.shortcuts import assign_perm
from tom_calendar.models import CalendarEvent, EventTodo
from tom_dataproducts.models import DataProduct, DataProductGroup, ReducedDatum
from tom_dataservices.models import DataServiceQuery
from tom_observations.models import ObservationGroup, ObservationRecord, ObservationTemplate
from tom_targets.models import PersistentShare, Target, TargetExtra, TargetList, TargetName

from myapp.jobs import history, run_now, schedule
from myapp.jobs.options import spec_from_words
from myapp.models import DeadLetter, JobRun, StreamState

PASSWORD = 'pw-for-tests-only'
CRONTAB = '5 * * * * python manage.py jobs run save_data\n'
FILE_BYTES = b'SIMPLE  = T / a private frame'


class World:
    """Made inside a test's database; `value(word)` turns a table's word (private, product...)
    into the primary key or text it stands for."""

    def __init__(self, secret):
        self.users = {
            'no permission': User.objects.create_user('stranger', password=PASSWORD),
            'viewer': User.objects.create_user('observer', password=PASSWORD),
            'staff': User.objects.create_superuser('pi', password=PASSWORD),  # as createsuperuser makes
        }
        observers = Group.objects.create(name='observers')
        self.users['viewer'].groups.add(observers)
        self.private = Target.objects.create(name=secret, type='SIDEREAL', ra=10, dec=-20,
                                             permissions=Target.Permissions.PRIVATE)
        assign_perm('tom_targets.view_target', observers, self.private)
        self.public = Target.objects.create(name='SN 2026pub', type='SIDEREAL', ra=11, dec=-21,
                                            permissions=Target.Permissions.PUBLIC)
        self.alias = TargetName.objects.create(target=self.private, name=f'{secret} alias')
        self.extra = TargetExtra.objects.create(target=self.private, key='redshift', value='0.01')
        self.targetlist = TargetList.objects.create(name='private list')
        self.targetlist.targets.add(self.private)
        self.record = ObservationRecord.objects.create(target=self.private, facility='LCORedirect', observation_id='7',
                                                       status='COMPLETED', parameters={})
        self.product = DataProduct.objects.create(product_id='p1', target=self.private, observation_record=self.record,
                                                  data_product_type='fits_file')
        self.product.data.save(f'{secret.replace(" ", "_")}_frame.fits', ContentFile(FILE_BYTES))
        self.datum = ReducedDatum.objects.create(target=self.private, data_product=self.product,
                                                 data_type='photometry', value={'magnitude': 18.1},
                                                 timestamp=timezone.now())
        self.productgroup = DataProductGroup.objects.create(name='private frames')
        self.product.group.add(self.productgroup)
        now = timezone.now()
        self.event = CalendarEvent.objects.create(title='observing night', start_time=now,
                                                  end_time=now + timedelta(hours=1))
        self.todo = EventTodo.objects.create(event=self.event, description='check the focus')
        self.comment = Comment.objects.create(
            content_type=ContentType.objects.get_for_model(Target), object_pk=str(self.private.pk),
            site=Site.objects.get_current(), user=self.users['staff'], comment=f'{secret} is bright tonight')
        self.template = ObservationTemplate.objects.create(name='standard', facility='LCORedirect', parameters={})
        self.obsgroup = ObservationGroup.objects.create(name='a cadence')
        self.query = DataServiceQuery.objects.create(name='a query', data_service='TNS', parameters={})
        self.share = PersistentShare.objects.create(target=self.private, user=self.users['staff'],
                                                    destination='elsewhere')
        self.group = Group.objects.create(name='collaborators')
        schedule.record_load(CRONTAB)
        run = history.start(spec_from_words(['save_data']), JobRun.Trigger.SCHEDULE)
        history.finish(run, JobRun.Outcome.FAILED, 1, summary=f'FAILED {secret}: HTTP 500',
                       output_tail=f'downloading {secret}\nFAILED {secret}: HTTP 500')
        self.job_request = run_now.ask('save_data', self.users['staff'])
        self.task = DBTaskResult.objects.create(
            task_path='tom_dataproducts.tasks.atlas_query', args_kwargs={'args': [secret], 'kwargs': {}},
            queue_name='default', backend_name='default', priority=0, run_after=None)
        StreamState.objects.create(name='alerts', first_started_at=timezone.now(), topics=['gcn.notices'],
                                   class_path='myapp.streams.kafka.KafkaStream',
                                   last_error=f'gcn.notices[0]@7: KeyError: {secret}')
        self.letter = DeadLetter.objects.create(
            stream='alerts', topic='gcn.notices', partition=0, offset=7, value=f'notice of {secret}'.encode(),
            handler='myapp.streams.handlers.save_alert', error=f'KeyError: {secret}', failed_at=timezone.now())
        self.csrf_token = _get_new_csrf_string()
        self.words = {
            'private': self.private.pk, 'public': self.public.pk, 'alias': self.alias.pk, 'extra': self.extra.pk,
            'targetlist': self.targetlist.pk, 'record': self.record.pk, 'product': self.product.pk,
            'datum': self.datum.pk, 'productgroup': self.productgroup.pk, 'event': self.event.pk,
            'todo': self.todo.pk, 'comment': self.comment.pk, 'template': self.template.pk,
            'obsgroup': self.obsgroup.pk, 'query': self.query.pk, 'share': self.share.pk, 'group': self.group.pk,
            'stranger': self.users['no permission'].pk, 'job': 'save_data', 'request': self.job_request.pk,
            'task': self.task.pk, 'stream': 'alerts', 'letter': self.letter.pk, 'file': self.product.data.name,
            'secret': secret,
            'contenttype': ContentType.objects.get_for_model(Target).pk,
        }

    def value(self, word):
        return self.words.get(word, word)

    def mend_files(self):
        """After a permitted delete: the product's file back, as the next request expects it."""
        storage = self.product.data.storage
        if not storage.exists(self.product.data.name):
            storage.save(self.product.data.name, ContentFile(FILE_BYTES))
