"""Audit registration of the campaign models people edit."""

from auditlog.registry import auditlog

from campaigns.models import FieldMap, Lead, LifecycleStage, MessagingPack

for model in (Lead, LifecycleStage, FieldMap, MessagingPack):
    auditlog.register(model)
