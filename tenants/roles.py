"""Roles and the permissions each one holds: the one map, everything else denied.

A role is a Django group of the same name, kept in sync in every schema after migrations. A
permission that no role lists is held by nobody (fail closed); superusers are not used in tenant
schemas.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", "Tenant admin"
    REVOPS = "revops", "RevOps"
    AE = "ae", "Account executive"
    VIEWER = "viewer", "Viewer"
    PLATFORM_OPERATOR = "platform_operator", "Platform operator"

    @classmethod
    def tenant_roles(cls) -> list[Role]:
        return [cls.TENANT_ADMIN, cls.REVOPS, cls.AE, cls.VIEWER]

    @classmethod
    def tenant_choices(cls) -> list[tuple[str, str]]:
        return [(role.value, role.label) for role in cls.tenant_roles()]

    @property
    def group_name(self) -> str:
        return self.label


_POLICY_MODELS = ("rolloutsettings", "icpdefinition", "quotapolicy", "sendingpolicy")
_VIEW_POLICY = [f"policy.view_{m}" for m in _POLICY_MODELS]
_EDIT_POLICY = [f"policy.change_{m}" for m in _POLICY_MODELS]
# The budget ledger and its Spend page: read by everyone who reads the quotas; written by the
# budget services only.
_VIEW_BUDGET = [
    f"budget.view_{m}" for m in ("budgetcounter", "budgetreservation", "budgetcharge", "budgetalert")
]
_READ_OPS = ["policy.view_heartbeat", "auditlog.view_logentry"]
_SCOPES_ALL = [
    "approvals.approve_crm_write",
    "approvals.approve_email_send",
    "approvals.approve_enrichment",
    "approvals.approve_campaign_change",
]
_READ_QUEUE = [
    "approvals.view_actionrequest",
    "approvals.view_event",
    "approvals.view_approverrule",
    "approvals.view_escalationpolicy",
]
_READ_CONNECTORS = [
    "connectors.view_suppression",
    "connectors.view_webhookevent",
    "connectors.view_callledger",
    "connectors.view_enrichment",
    "connectors.view_claysource",
    "connectors.view_crmpull",
]
_EDIT_ROSTER = [
    "approvals.add_approverrule",
    "approvals.change_approverrule",
    "approvals.delete_approverrule",
    "approvals.change_escalationpolicy",
]

# django-axes' failed sign-ins on the host: read them and unlock a login before its lock ends.
_UNLOCK_LOGINS = ["axes.view_accessattempt", "axes.delete_accessattempt"]

# A person proposes an action (it still waits for an approver of its kind; the requester never
# approves their own). Viewers only read.
_PROPOSE = ["approvals.propose_action"]
# API tokens: everyone manages their own, and only their own (shown once, stored hashed).
_OWN_TOKENS = ["policy.view_apitoken", "policy.add_apitoken", "policy.delete_apitoken"]

_VIEW_LEADS = ["campaigns.view_lead"]
# Skill runs: everyone in the tenant sees them and their evaluations; RevOps and tenant admins
# start them, edit their schedules and the messaging pack they write from.
_VIEW_SKILLS = [
    "skills.view_skillrun",
    "skills.view_skillrunstep",
    "skills.view_skillschedule",
    "evaluation.view_evaluation",
    "evaluation.view_evaluationsettings",
    "campaigns.view_messagingpack",
]
_RUN_SKILLS = [
    "skills.start_skillrun",
    "skills.add_skillschedule",
    "skills.change_skillschedule",
    "skills.delete_skillschedule",
    "campaigns.add_messagingpack",
    "campaigns.change_messagingpack",
    # how many times the judge scores each output, and with which model
    "evaluation.change_evaluationsettings",
]
_EDIT_LEADS = [
    "campaigns.view_lead",
    "campaigns.add_lead",
    "campaigns.change_lead",
    *[
        f"campaigns.{action}_{model}"
        for action in ("view", "add", "change", "delete")
        for model in ("lifecyclestage", "fieldmap")
    ],
]

# "app_label.codename" per role. Later issues add their permissions here.
ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.TENANT_ADMIN: frozenset(
        _VIEW_POLICY
        + _VIEW_BUDGET
        + _EDIT_POLICY
        + _READ_OPS
        + _READ_QUEUE
        + _EDIT_ROSTER
        + _SCOPES_ALL
        + _READ_CONNECTORS
        + _EDIT_LEADS
        + [
            # re-queue or resolve a failed / unknown-outcome request; lift a wrong suppression
            "approvals.resolve_execution",
            "connectors.delete_suppression",
            "connectors.add_suppression",
            "connectors.view_credential",
            "connectors.add_credential",
            "connectors.change_credential",
            "connectors.view_webhookendpoint",
            "connectors.add_webhookendpoint",
            "connectors.change_webhookendpoint",
            "auth.view_user",
            "auth.add_user",
            "auth.change_user",
            "auth.view_group",
        ]
        + _UNLOCK_LOGINS
        + _PROPOSE
        + _OWN_TOKENS
        + _VIEW_SKILLS
        + _RUN_SKILLS
    ),
    Role.REVOPS: frozenset(
        _VIEW_POLICY
        + _VIEW_BUDGET
        + _EDIT_POLICY
        + _READ_OPS
        + _READ_QUEUE
        + _EDIT_ROSTER
        + _READ_CONNECTORS
        + _EDIT_LEADS
        + ["connectors.add_suppression"]
        + ["approvals.approve_enrichment", "approvals.approve_campaign_change"]
        + _PROPOSE
        + _OWN_TOKENS
        + _VIEW_SKILLS
        + _RUN_SKILLS
    ),
    Role.AE: frozenset(
        [
            *_VIEW_POLICY,
            *_VIEW_BUDGET,
            "policy.view_heartbeat",
            *_READ_QUEUE,
            *_SCOPES_ALL,
            "connectors.view_suppression",
            "connectors.add_suppression",
            *_VIEW_LEADS,
            # AEs own their accounts and send the odd one-off email or CRM fix; four eyes still
            # holds: the requester never approves their own request, and the evaluation fields are
            # a skill run's only.
            *_PROPOSE,
            *_OWN_TOKENS,
            *_VIEW_SKILLS,
        ]
    ),
    Role.VIEWER: frozenset(
        _VIEW_POLICY
        + _VIEW_BUDGET
        + _READ_OPS
        + _READ_QUEUE
        + _READ_CONNECTORS
        + _VIEW_LEADS
        + _OWN_TOKENS
        + _VIEW_SKILLS
    ),
    Role.PLATFORM_OPERATOR: frozenset(
        [
            "tenants.view_tenant",
            "tenants.add_tenant",
            "tenants.change_tenant",
            "tenants.view_domain",
            "tenants.add_domain",
            "tenants.change_domain",
            "tenants.view_tenantaccessgrant",
            "tenants.add_tenantaccessgrant",
            "tenants.change_tenantaccessgrant",
            "tenants.view_platformsettings",
            "tenants.change_platformsettings",
            # model prices: a change is a new row (past runs keep their price); never deleted
            "tenants.view_modelprice",
            "tenants.add_modelprice",
            "tenants.change_modelprice",
            "auth.view_user",
            "auth.add_user",
            "auth.change_user",
            "auth.view_group",
            "auditlog.view_logentry",
        ]
        + _UNLOCK_LOGINS
        + [
            f"django_celery_beat.{action}_{model}"
            for action in ("view", "add", "change", "delete")
            for model in (
                "periodictask",
                "intervalschedule",
                "crontabschedule",
                "solarschedule",
                "clockedschedule",
            )
        ]
    ),
}

PUBLIC_ROLES = (Role.PLATFORM_OPERATOR,)


def roles_holding(permission: str) -> list[Role]:
    """The tenant roles whose map holds ``permission`` ("app_label.codename")."""
    return [role for role in Role.tenant_roles() if permission in ROLE_PERMISSIONS[role]]
