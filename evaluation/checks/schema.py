"""Schema validity: does the output fit the contract's output schema, and are the values it
requires actually filled?

The runner already refuses an output that does not fit (a failed attempt), so a finding here
usually means an edit or a fallback output; it is still checked, since the release policy must not
trust that every caller validated first.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from evaluation.checks.base import Finding
from evaluation.dimensions import Dimension, Severity

MAX_REPORTED = 10  # beyond this the output is broken anyway; the count says how broken


def schema_findings(output: Any, schema: dict[str, Any]) -> list[Finding]:
    if not schema:
        return [
            Finding(
                Severity.HIGH,
                Dimension.SCHEMA_VALIDITY,
                "No output schema was given, so the output's shape cannot be checked.",
                suggestion="Declare the output schema in the skill's contract.",
                check="schema",
            )
        ]
    try:
        Draft202012Validator.check_schema(schema)  # the constructor does not check it
        validator = Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(output), key=lambda e: [str(p) for p in e.absolute_path])
    except SchemaError as exc:
        return [
            Finding(
                Severity.HIGH,
                Dimension.SCHEMA_VALIDITY,
                f"The output schema itself is invalid: {exc.message}.",
                suggestion="Fix the contract's output schema.",
                check="schema",
            )
        ]
    findings = []
    for error in errors[:MAX_REPORTED]:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        findings.append(
            Finding(
                Severity.HIGH,
                Dimension.SCHEMA_VALIDITY,
                f"The output does not fit its schema at {where}: {error.message}.",
                item=where,
                suggestion=f"Return {where} as the schema requires ({error.validator}: "
                f"{error.validator_value}).",
                check="schema",
            )
        )
    if len(errors) > MAX_REPORTED:
        findings.append(
            Finding(
                Severity.HIGH,
                Dimension.SCHEMA_VALIDITY,
                f"…and {len(errors) - MAX_REPORTED} more schema errors.",
                check="schema",
            )
        )
    return findings


def empty_required_findings(output: Any, schema: dict[str, Any]) -> list[Finding]:
    """A required value that is present but empty ("", [], {}, null) fits most schemas and is
    still missing to a reader: a completeness issue."""
    findings: list[Finding] = []
    _walk(output, schema or {}, [], findings)
    return findings[:MAX_REPORTED]


def _walk(value: Any, schema: dict[str, Any], path: list[str], out: list[Finding]) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name in value and _empty(value[name]):
                where = "/".join([*path, name])
                out.append(
                    Finding(
                        Severity.MEDIUM,
                        Dimension.COMPLETENESS,
                        f"{where} is required and empty.",
                        item=where,
                        suggestion=f"Fill in {where}.",
                        check="completeness",
                    )
                )
        for name, sub in properties.items():
            if name in value:
                _walk(value[name], sub, [*path, name], out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, element in enumerate(value):
            _walk(element, schema["items"], [*path, str(index)], out)


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and not value
