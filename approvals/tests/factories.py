"""Helpers to make action requests in tests."""

from __future__ import annotations

import itertools

from approvals.services import action_propose
from tenants.policy.models import RolloutSettings

_keys = itertools.count()


def set_phase(phase: str, *, kill_switch: bool = False) -> None:
    rollout = RolloutSettings.get_solo()
    rollout.phase = phase
    rollout.kill_switch = kill_switch
    rollout.kill_switch_reason = "test" if kill_switch else ""
    rollout.save()


def email_payload(**overrides):
    return {
        "to": "lead@prospect.example",
        "to_name": "Lee Lead",
        "to_title": "Head of Growth",
        "subject": "Quick idea",
        "body": "Hi Lee,\nA short note.",
        **overrides,
    }


def propose_email(requested_by=None, key: str | None = None, **kwargs):
    payload = kwargs.pop("payload", None) or email_payload()
    if requested_by is None:
        kwargs.setdefault("skill_run", "skill-run-test")
    return action_propose(
        kind="email.send",
        payload=payload,
        idempotency_key=key or f"test-key-{next(_keys)}",
        requested_by=requested_by,
        **kwargs,
    )
