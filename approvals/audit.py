"""What the audit log records for approvals; secrets are masked whole (auditlog's default keeps half)."""

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
# The webhook URL is a secret: the log records that it changed, never what it was or became.
auditlog.register(
    EscalationPolicy, mask_fields=["slack_webhook_url"], mask_callable="approvals.audit.mask_secret"
)


def mask_secret(value: str) -> str:
    return "(set)" if value else "(not set)"
