"""The job history and the recorded schedules in Django's admin, to read (they are written
by the job runtime only)."""
from django.contrib import admin

from myapp.models import CrontabLoad, JobRun


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
