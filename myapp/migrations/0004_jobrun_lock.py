from django.db import migrations, models
from django.db.models import F


def lock_by_name(apps, schema_editor):
    # Until now every run held the lock named after its job.
    apps.get_model('myapp', 'JobRun').objects.update(lock=F('name'))


class Migration(migrations.Migration):

    dependencies = [
        ('myapp', '0003_product_listing'),
    ]

    operations = [
        migrations.AddField(
            model_name='jobrun',
            name='lock',
            field=models.CharField(blank=True, help_text="the lock it held: the job's name, or the one its command shares", max_length=200),
        ),
        migrations.AddIndex(
            model_name='jobrun',
            index=models.Index(fields=['lock', 'outcome'], name='myapp_jobru_lock_f87f0a_idx'),
        ),
        migrations.RunPython(lock_by_name, migrations.RunPython.noop),
    ]
