import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0005_webhook_pending"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookDeadLetter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "system",
                    models.CharField(
                        choices=[
                            ("hubspot", "HubSpot"),
                            ("gohighlevel", "GoHighLevel"),
                            ("instantly", "Instantly"),
                            ("clay", "Clay"),
                            ("smtp", "SMTP"),
                            ("mh1", "MH1 (our own links)"),
                        ],
                        max_length=16,
                    ),
                ),
                ("received_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("reason", models.CharField(max_length=500)),
                ("body", models.TextField(blank=True)),
                ("body_bytes", models.PositiveIntegerField(default=0)),
                ("content_type", models.CharField(blank=True, max_length=100)),
            ],
            options={
                "ordering": ("-received_at",),
                "indexes": [
                    models.Index(fields=["system", "received_at"], name="connectors_deadletter_sys_idx")
                ],
            },
        ),
    ]
