"""The scale is written once: the weights sum to 1 and no other file restates one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evaluation.dimensions import JUDGED_DIMENSIONS, WEIGHTS, Dimension, rubric_text, weighted
from evaluation.judge import response_schema

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".git", ".local", "node_modules", "staticfiles"}


def test_the_six_weights_of_the_seed_sum_to_one():
    assert dict(WEIGHTS) == {
        "schema_validity": 0.18,
        "factuality": 0.23,
        "completeness": 0.18,
        "brand_voice": 0.13,
        "risk_flags": 0.18,
        "context_efficiency": 0.10,
    }
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert weighted(dict.fromkeys(WEIGHTS, 1.0)) == pytest.approx(1.0)
    assert weighted(dict.fromkeys(WEIGHTS, 0.5)) == pytest.approx(0.5)


def test_a_missing_dimension_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="context_efficiency"):
        weighted({name: 1.0 for name in WEIGHTS if name != Dimension.CONTEXT_EFFICIENCY})


def test_the_judges_prompt_and_schema_are_built_from_the_same_dimensions():
    text = rubric_text()
    for name in JUDGED_DIMENSIONS:
        assert f"{name} ({WEIGHTS[name]:.2f})" in text
    assert set(response_schema()["properties"]["dimensions"]["required"]) == set(JUDGED_DIMENSIONS)


def _sources():
    for path in ROOT.rglob("*"):
        if any(part in SKIP for part in path.parts) or path.suffix not in {
            ".py",
            ".md",
            ".json",
            ".html",
            ".txt",
        }:
            continue
        if path.is_file():
            yield path


def test_no_other_file_restates_a_weight():
    names = "|".join(WEIGHTS)
    pattern = re.compile(rf"({names})\W{{1,6}}(0?\.(18|23|13|10)|(18|23|13|10)\s*%)\b")
    here = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources()
        if path.resolve() not in {here, ROOT / "evaluation" / "dimensions.py"}
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], "weights are restated outside evaluation/dimensions.py"
