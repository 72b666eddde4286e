"""Default lifecycle taxonomy (seed 000 §5.3) and field maps for GoHighLevel and HubSpot.

Runs in every tenant schema (and in the template schema new tenants are cloned from); the data is
frozen here so later edits to the code do not change what an old migration wrote.
"""

from django.db import migrations

# (key, label, CRM value, order, terminal)
STAGES = [
    ("subscriber", "Subscriber", "subscriber", 10, False),
    ("lead", "Lead", "lead", 20, False),
    ("mql", "Marketing qualified lead", "marketingqualifiedlead", 30, False),
    ("sql", "Sales qualified lead", "salesqualifiedlead", 40, False),
    ("opportunity", "Opportunity", "opportunity", 50, False),
    ("customer", "Customer", "customer", 60, True),
    ("evangelist", "Evangelist", "evangelist", 70, True),
]

# (system, canonical field, remote field, direction, transform)
FIELD_MAPS = [
    # Seed 001, GoHighLevel integration spec (fields the canonical lead has).
    ("gohighlevel", "email", "email", "both", "lower"),
    ("gohighlevel", "first_name", "firstName", "both", "none"),
    ("gohighlevel", "last_name", "lastName", "both", "none"),
    ("gohighlevel", "company", "companyName", "both", "none"),
    ("gohighlevel", "title", "customField.title", "both", "none"),
    ("gohighlevel", "icp_score", "customField.icp_score", "both", "none"),
    ("gohighlevel", "icp_tier", "tags", "both", "tier_tag"),
    # HubSpot CRM v3 contact properties.
    ("hubspot", "email", "email", "both", "lower"),
    ("hubspot", "first_name", "firstname", "both", "none"),
    ("hubspot", "last_name", "lastname", "both", "none"),
    ("hubspot", "company", "company", "both", "none"),
    ("hubspot", "title", "jobtitle", "both", "none"),
    ("hubspot", "lifecycle_stage", "lifecyclestage", "both", "lifecycle"),
]


def create_defaults(apps, schema_editor):
    LifecycleStage = apps.get_model("campaigns", "LifecycleStage")
    FieldMap = apps.get_model("campaigns", "FieldMap")
    for key, label, crm_value, order, terminal in STAGES:
        LifecycleStage.objects.get_or_create(
            key=key, defaults={"label": label, "crm_value": crm_value, "order": order, "is_terminal": terminal}
        )
    for system, canonical, remote, direction, transform in FIELD_MAPS:
        FieldMap.objects.get_or_create(
            system=system,
            canonical_field=canonical,
            defaults={"remote_field": remote, "direction": direction, "transform": transform},
        )


def remove_defaults(apps, schema_editor):
    LifecycleStage = apps.get_model("campaigns", "LifecycleStage")
    FieldMap = apps.get_model("campaigns", "FieldMap")
    for system, canonical, *_ in FIELD_MAPS:
        FieldMap.objects.filter(system=system, canonical_field=canonical).delete()
    LifecycleStage.objects.filter(key__in=[s[0] for s in STAGES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_defaults, remove_defaults),
    ]
