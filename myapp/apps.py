from django.apps import AppConfig


class MyappConfig(AppConfig):
    """This TOM's own code: the jobs that cron runs live in myapp/management/commands/."""

    name = 'myapp'
    default_auto_field = 'django.db.models.AutoField'
