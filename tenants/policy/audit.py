"""Audit registration of the models people edit in a tenant's admin."""

from auditlog.registry import auditlog
from django.contrib.auth.models import Group, User

from tenants.policy.models import IcpDefinition, QuotaPolicy, RolloutSettings, SendingPolicy

for model in (RolloutSettings, IcpDefinition, QuotaPolicy, SendingPolicy):
    auditlog.register(model)

if not auditlog.contains(User):
    auditlog.register(User, exclude_fields=["password", "last_login"])
if not auditlog.contains(Group):
    auditlog.register(Group, m2m_fields={"permissions"})
