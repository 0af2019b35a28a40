"""The job history, the recorded schedules and save_data's product listings in Django's
admin, to read (they are written by the job runtime and the sync engine only). Deleting a
listing has save_data list that record again on its next run."""
from django.contrib import admin

from myapp.models import CrontabLoad, JobRun, ProductListing


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ['name', 'outcome', 'started_at', 'duration', 'host', 'trigger', 'summary']
    list_filter = ['outcome', 'trigger', 'name']
    search_fields = ['name', 'summary']
    date_hierarchy = 'started_at'


@admin.register(CrontabLoad)
class CrontabLoadAdmin(ReadOnlyAdmin):
    list_display = ['loaded_at', 'accepted', 'host', 'bad_line', 'reason']
    list_filter = ['accepted']


@admin.register(ProductListing)
class ProductListingAdmin(ReadOnlyAdmin):
    list_display = ['record', 'listed_at', 'succeeded', 'products', 'first_listed_at', 'error']
    list_filter = ['succeeded']
    list_select_related = ['record__target']
    search_fields = ['record__observation_id', 'record__target__name', 'error']
    date_hierarchy = 'listed_at'
