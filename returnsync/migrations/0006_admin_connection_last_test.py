# The latest connection test an admin ran, for the health badge (returnsync.selectors.connection_health).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('returnsync', '0005_refund_gate_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='connection',
            name='last_test_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='connection',
            name='last_test_message',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='connection',
            name='last_test_ok',
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
