from django.apps import AppConfig


class MyappConfig(AppConfig):
    """This TOM's own code: the jobs that cron runs live in myapp/management/commands/, the
    job runtime in myapp/jobs/, its pages in views.py."""

    name = 'myapp'
    default_auto_field = 'django.db.models.AutoField'

    def ready(self):
        from myapp import wake  # noqa: F401 (connects its signal: a stored task wakes the cron program)

    def nav_items(self):
        """TOM Toolkit's integration point for an app's items in the navigation bar."""
        return [{'partial': 'myapp/partials/nav_jobs.html'}]

    def target_detail_tabs(self):
        """TOM Toolkit's integration point for a tab on each target's page: its downloads."""
        return [{'partial': 'myapp/partials/target_jobs.html', 'context': 'myapp.target_tab.context',
                 'label': 'Jobs'}]
