"""After every migration of a schema, its role groups hold exactly their mapped permissions."""

from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from tenants.models import Domain, PlatformSettings, Tenant, TenantAccessGrant

for model in (Tenant, Domain, TenantAccessGrant, PlatformSettings):
    auditlog.register(model)


@receiver(post_migrate, dispatch_uid="tenants_sync_roles")
def sync_roles_after_migrate(sender, using, plan=None, **kwargs):
    # post_migrate is sent once per app; act on the last one, when every permission exists.
    configs = [c for c in apps.get_app_configs() if c.models_module is not None]
    if sender is not configs[-1]:
        return
    from tenants.services import roles_sync

    for config in configs:
        create_permissions(config, verbosity=0, using=using)
    roles_sync()
    from tenants.schedules import schedules_ensure

    schedules_ensure()
