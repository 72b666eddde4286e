from auditlog.registry import auditlog

from approvals.models import ActionRequest, ApproverRule, EscalationPolicy

auditlog.register(
    ActionRequest,
    include_fields=[
        "status",
        "payload",
        "assigned_to",
        "delegated_until",
        "escalation_level",
        "rejection_reason",
    ],
)
auditlog.register(ApproverRule)
auditlog.register(EscalationPolicy)
