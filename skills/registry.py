"""The skills this console can run. A skill whose contract is incomplete is refused at start-up:
it is not listed, cannot be started, and ``manage.py check`` reports why (skills.E001)."""

from __future__ import annotations

import logging
from typing import Any

from jsonschema import Draft202012Validator

from skills.base import Skill
from skills.errors import ContractInvalid, InputsInvalid, UnknownSkill

logger = logging.getLogger(__name__)

_SKILLS: dict[str, Skill] = {}
REFUSED: dict[str, list[str]] = {}  # skill class path → why its contract did not load


def register(skill_class: type[Skill]) -> type[Skill]:
    """Class decorator: load the skill if its contract is complete, else refuse it."""
    contract = getattr(skill_class, "contract", None)
    where = f"{skill_class.__module__}.{skill_class.__qualname__}"
    problems = ["no contract"] if contract is None else contract.problems()
    if problems:
        REFUSED[where] = problems
        logger.error("skill %s not loaded: %s", where, "; ".join(problems))
        return skill_class
    if contract.slug in _SKILLS and type(_SKILLS[contract.slug]) is not skill_class:
        REFUSED[where] = [f"slug {contract.slug!r} is already taken"]
        return skill_class
    _SKILLS[contract.slug] = skill_class()
    return skill_class


def load_or_raise(skill_class: type[Skill]) -> None:
    """For tests and tools: the contract's problems as an exception."""
    contract = getattr(skill_class, "contract", None)
    problems = ["no contract"] if contract is None else contract.problems()
    if problems:
        raise ContractInvalid(f"{skill_class.__name__}: " + "; ".join(problems))


def get(slug: str) -> Skill:
    try:
        return _SKILLS[slug]
    except KeyError:
        known = ", ".join(sorted(_SKILLS)) or "none"
        raise UnknownSkill(f"Unknown skill {slug!r}. Known skills: {known}.") from None


def all_skills() -> list[Skill]:
    return [_SKILLS[slug] for slug in sorted(_SKILLS)]


def skill_choices() -> list[tuple[str, str]]:
    return [(s.contract.slug, s.contract.name) for s in all_skills()]


def validate_inputs(contract: Any, inputs: Any) -> dict[str, Any]:
    """The inputs checked against the skill's input schema; InputsInvalid with per-field errors."""
    if not isinstance(inputs, dict):
        raise InputsInvalid("Inputs must be a JSON object.", {"inputs": ["Must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(contract.input_schema).iter_errors(inputs):
        path = list(error.absolute_path)
        if error.validator == "required" and not path:
            missing = error.message.split("'")[1] if "'" in error.message else "inputs"
            errors.setdefault(missing, []).append("This field is required.")
            continue
        if error.validator == "additionalProperties" and not path:
            errors.setdefault("inputs", []).append(error.message)
            continue
        field = str(path[0]) if path else "inputs"
        errors.setdefault(field, []).append(error.message)
    if errors:
        summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in sorted(errors.items()))
        raise InputsInvalid(f"The inputs do not fit {contract.slug}: {summary}", errors)
    return inputs
