"""A skill never reaches a write path: it reads, and returns proposed actions; only the runner
proposes them (and only the approval queue's executors write). Checked twice: no skill module
imports a write path, and running every skill with every write path booby-trapped touches none."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from skills import registry

# modules and names through which something outside the console changes
FORBIDDEN_MODULES = (
    "approvals.services",
    "approvals.executors",
    "connectors.executors",
    "connectors.services",
    "connectors.ledger",
    "connectors.mail",
    "connectors.sending",
    "connectors.http",
    "django.core.mail",
    "smtplib",
    "httpx",
    "requests",
    "urllib.request",
)
FORBIDDEN_NAMES = ("WriteClient", "action_propose", "send_mail", "EmailMessage")

SKILL_MODULE_DIRS = ("skills/builtin",)
SKILL_MODULE_FILES = ("skills/base.py", "skills/services/context.py")


def _skill_modules() -> list[Path]:
    base = Path(settings.BASE_DIR)
    files = [base / f for f in SKILL_MODULE_FILES]
    for folder in SKILL_MODULE_DIRS:
        files += sorted((base / folder).glob("*.py"))
    return files


def _imports(tree: ast.AST) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("path", _skill_modules(), ids=lambda p: p.name)
def test_no_skill_module_imports_a_write_path(path):
    tree = ast.parse(path.read_text())
    bad = [
        f"{module}{'.' + name if name else ''}"
        for module, name in _imports(tree)
        if module.startswith(FORBIDDEN_MODULES) or any(n in name for n in FORBIDDEN_NAMES)
    ]
    assert not bad, f"{path.name} imports a write path: {bad}"


def test_the_check_itself_catches_a_write_import():
    tree = ast.parse("from connectors.clients.hubspot import HubSpotWriteClient\nimport smtplib\n")
    bad = [
        m
        for m, n in _imports(tree)
        if m.startswith(FORBIDDEN_MODULES) or any(x in n for x in FORBIDDEN_NAMES)
    ]
    assert bad == ["connectors.clients.hubspot", "smtplib"]


def _tenant_data() -> None:
    """What the built-in skills read: an active messaging pack and a few scored leads."""
    from campaigns.messaging import DEFAULT_PACK, messaging_pack_save
    from campaigns.models import Lead

    messaging_pack_save(
        acting_user=None,
        **{**DEFAULT_PACK, "postal_address": "1 Main St, Springfield, IL 62701", "company_name": "Alpha Inc"},
    )
    for n, tier in enumerate("AABC"):
        Lead.objects.create(
            email=f"dana{n}@globex.example",
            first_name="Dana",
            last_name="Lee",
            company="Globex",
            title="VP Sales",
            industry="SaaS",
            icp_tier=tier,
            icp_score=90 - 10 * n,
        )


def _trap(what: str):
    def boom(*args, **kwargs):
        raise AssertionError(f"a skill reached a write path: {what}")

    return boom


@pytest.mark.django_db
@pytest.mark.parametrize("slug", [s.contract.slug for s in registry.all_skills()] or ["none"])
def test_running_a_skill_touches_no_write_path(slug, alpha):
    if slug == "none":
        pytest.skip("no skills loaded")
    from skills.testing import skill_exercise

    skill = registry.get(slug)
    traps = [
        mock.patch("approvals.services.proposal.action_propose", _trap("action_propose")),
        mock.patch("approvals.services.action_propose", _trap("action_propose")),
        mock.patch("django.core.mail.EmailMessage.send", _trap("email")),
        mock.patch("httpx.Client.send", _trap("HTTP")),
    ]
    for module_name in (
        "connectors.clients.hubspot",
        "connectors.clients.gohighlevel",
        "connectors.clients.instantly",
        "connectors.clients.clay",
    ):
        module = importlib.import_module(module_name)
        for name in dir(module):
            if name.endswith("WriteClient"):
                traps.append(mock.patch.object(getattr(module, name), "__init__", _trap(name)))
    with tenant_context(alpha):
        _tenant_data()
        for trap in traps:
            trap.start()
        try:
            exercise = skill_exercise(slug, dict(skill.example_inputs))
        finally:
            for trap in traps:
                trap.stop()
    assert isinstance(exercise.output, dict)
