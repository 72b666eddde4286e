"""Evaluate a skill's output, or a person's edit of it, and record the evaluation.

``evaluate`` runs the deterministic checks, asks the judge ``EvaluationSettings.judge_runs`` times
through the tenant's provider, combines them (the judge may only lower a dimension, the policy
uses the lowest run) and saves one ``Evaluation`` with everything needed to replay it: the
subject, the output and its schema, the messaging pack as applied, the rubric and the prompt.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction

from evaluation.checks import CheckReport, Finding, VoiceRules, run_checks
from evaluation.dimensions import (
    FAIL_SEVERITY,
    JUDGED_DIMENSIONS,
    LABELS,
    PASS_THRESHOLD,
    RUBRIC_VERSION,
    SEVERITY_ORDER,
    SRAC_PASS,
    WEIGHTS,
    rubric_hash,
    rubric_text,
    weighted,
)
from evaluation.judge import JudgeResult, judge
from evaluation.models import Evaluation, EvaluationSettings, SubjectKind
from evaluation.scoring import DimensionScore, dimension_scores, srac_deterministic, srac_mean

if TYPE_CHECKING:
    from approvals.models import ActionRequest
    from skills.base import EvaluationSubject
    from skills.models import SkillRun
    from skills.providers import LlmProvider

logger = logging.getLogger(__name__)

MAX_SUGGESTIONS = 10


def voice_rules_current() -> VoiceRules:
    """The active messaging pack's rules (empty rules when the tenant has none yet)."""
    from campaigns.models import MessagingPack

    return VoiceRules.from_pack(MessagingPack.objects.filter(is_active=True).first())


@transaction.atomic
def evaluate(
    *,
    subject: EvaluationSubject,
    output: dict[str, Any],
    output_schema: dict[str, Any],
    run: SkillRun | None = None,
    request: ActionRequest | None = None,
    tokens_used: int = 0,
    token_budget: int = 0,
    provider: LlmProvider | None = None,
    subject_kind: str = SubjectKind.OUTPUT,
    original: Evaluation | None = None,
) -> Evaluation:
    """Evaluate ``output`` and save the evaluation (call inside the tenant's schema).

    ``provider`` is for tests and replays; by default the judge is the tenant's provider for its
    judge model (``skills.providers.provider_for``), the offline one without a key.
    """
    from skills.providers import provider_for

    settings = EvaluationSettings.get_solo()
    rules = voice_rules_current()
    report = run_checks(
        subject=subject,
        output=output,
        output_schema=output_schema,
        rules=rules,
        tokens_used=tokens_used,
        token_budget=token_budget,
    )
    deterministic = dimension_scores(
        report.findings, subject, tokens_used=tokens_used, token_budget=token_budget
    )
    srac_checks = srac_deterministic(subject, report.findings, deterministic)
    judged = judge(
        subject=subject,
        rules=rules,
        deterministic=deterministic,
        srac=srac_checks,
        runs=settings.judge_runs,
        provider=provider if provider is not None else provider_for(settings.judge_model),
        model=settings.judge_model,
    )
    combined = combine(deterministic, srac_checks, judged)
    findings = _merge_findings(report.findings, judged)
    blocking = [f for f in findings if SEVERITY_ORDER[f.severity] >= SEVERITY_ORDER[FAIL_SEVERITY]]
    passed = combined.score_used >= PASS_THRESHOLD and not blocking
    suggestions = _suggestions(findings, judged, combined, passed)

    evaluation = Evaluation.objects.create(
        run=run,
        request=request,
        original=original,
        subject_kind=subject_kind,
        content_kind=subject.kind,
        subject=_subject_snapshot(subject),
        output=output,
        output_schema=output_schema or {},
        voice_rules=rules.as_dict(),
        messaging_pack_version=rules.version,
        tokens_used=max(0, int(tokens_used)),
        token_budget=max(0, int(token_budget)),
        dimensions=combined.dimensions,
        score=_dec(combined.score),
        score_used=_dec(combined.score_used),
        passed=passed,
        issues=[f.as_dict() for f in findings],
        suggestions=suggestions,
        srac=combined.srac,
        srac_score=Decimal(str(round(combined.srac_score, 2))),
        srac_passed=combined.srac_score >= SRAC_PASS,
        ai_washing=report.ai_washing.as_dict(),
        ai_washing_severity=report.ai_washing.highest_severity,
        pii_found=[asdict(hit) for hit in report.pii],
        risk_flags=_risk_flags(findings, report),
        judge_provider=judged.provider,
        judge_model=judged.model,
        judge_runs=judged.requested,
        judge_scores=combined.run_scores,
        judge_spread=_dec(combined.spread),
        judge_errors=judged.errors,
        judge_input_tokens=judged.input_tokens,
        judge_output_tokens=judged.output_tokens,
        rubric_version=RUBRIC_VERSION,
        rubric_hash=rubric_hash(),
        rubric=rubric_text(),
        judge_prompt=judged.prompt,
        prompt_hash=judged.prompt_hash,
    )
    if judged.errors:
        logger.warning("evaluation %s: %s", evaluation.pk, "; ".join(judged.errors))
    return evaluation


class Combined:
    """The deterministic scores and the judge's runs, made one verdict."""

    def __init__(self) -> None:
        self.dimensions: dict[str, dict[str, Any]] = {}
        self.run_scores: list[float] = []
        self.score = 0.0
        self.score_used = 0.0
        self.spread = 0.0
        self.srac: dict[str, Any] = {}
        self.srac_score = 0.0


def combine(
    deterministic: dict[str, DimensionScore], srac_checks: dict[str, int], judged: JudgeResult
) -> Combined:
    """Per judge run, each judged dimension is min(deterministic, judge): the judge can find what
    a program cannot, and can never excuse what a program found. Each run's weighted score is one
    entry of ``judge_scores``; the release policy uses their minimum (see ``evaluation.judge`` for
    why the minimum). Without a successful run the deterministic scores stand alone."""
    result = Combined()
    per_run: list[dict[str, float]] = []
    srac_runs: list[dict[str, int]] = []
    for judge_run in judged.runs:
        scores = {name: deterministic[name].score for name in WEIGHTS}
        for name in JUDGED_DIMENSIONS:
            scores[name] = min(scores[name], judge_run.scores[name])
        per_run.append(scores)
        srac_runs.append({c: min(v, judge_run.srac[c]) for c, v in srac_checks.items()})
    if not per_run:
        per_run = [{name: deterministic[name].score for name in WEIGHTS}]
        srac_runs = [dict(srac_checks)]
    result.run_scores = [weighted(scores) for scores in per_run] if judged.runs else []
    means = {name: sum(run[name] for run in per_run) / len(per_run) for name in WEIGHTS}
    lows = {name: min(run[name] for run in per_run) for name in WEIGHTS}
    result.score = weighted(means)
    result.score_used = min(weighted(scores) for scores in per_run)
    result.spread = (max(result.run_scores) - min(result.run_scores)) if result.run_scores else 0.0
    for name in WEIGHTS:
        reasons = list(deterministic[name].reasons)
        if name in JUDGED_DIMENSIONS:
            for judge_run in judged.runs:
                reason = judge_run.reasons.get(name, "")
                if reason and judge_run.scores[name] < deterministic[name].score:
                    reasons.append(f"Judge ({judge_run.scores[name]:.2f}): {reason}")
        result.dimensions[name] = {
            "label": LABELS[name],
            "weight": WEIGHTS[name],
            "score": round(means[name], 4),
            "low": round(lows[name], 4),
            "deterministic": deterministic[name].score,
            "judge": [round(r.scores[name], 4) for r in judged.runs] if name in JUDGED_DIMENSIONS else [],
            "reasons": list(dict.fromkeys(reasons)),
        }
    lowest = min(srac_runs, key=srac_mean)
    result.srac = {"criteria": lowest, "deterministic": dict(srac_checks), "runs": srac_runs}
    result.srac_score = srac_mean(lowest)
    return result


def _merge_findings(findings: list[Finding], judged: JudgeResult) -> list[Finding]:
    """The checks' findings, then the judge's (each once, at the worst severity any run gave)."""
    out = list(findings)
    seen: dict[tuple[str, str], int] = {}
    for judge_run in judged.runs:
        for issue in judge_run.issues:
            marker = (issue.item, issue.message)
            if marker in seen:
                index = seen[marker]
                if SEVERITY_ORDER[issue.severity] > SEVERITY_ORDER[out[index].severity]:
                    out[index] = issue
                continue
            seen[marker] = len(out)
            out.append(issue)
    return sorted(out, key=lambda f: -SEVERITY_ORDER[f.severity])


def _suggestions(findings: list[Finding], judged: JudgeResult, combined: Combined, passed: bool) -> list[str]:
    """What a refinement is told to change: each finding's fix, worst first, then the judge's.
    A failed evaluation always carries at least one, naming the weakest dimension, so the release
    policy's auto_refine branch is never starved of instructions."""
    out: list[str] = []
    for finding in findings:
        if finding.suggestion:
            where = f" ({finding.item})" if finding.item else ""
            out.append(f"{finding.suggestion}{where}")
    for judge_run in judged.runs:
        out.extend(judge_run.suggestions)
    out = list(dict.fromkeys(s.strip() for s in out if s and s.strip()))
    if not passed and not out:
        weakest = min(combined.dimensions.items(), key=lambda item: item[1]["low"])
        name, data = weakest
        out.append(f"Improve {LABELS[name].lower()} (now {data['low']:.2f}): {data['reasons'][0]}")
    return out[:MAX_SUGGESTIONS]


def _risk_flags(findings: list[Finding], report: CheckReport) -> list[str]:
    flags = [f.flag for f in findings if f.flag]
    if report.pii:
        flags.append("pii")
    return list(dict.fromkeys(flags))


def _subject_snapshot(subject: Any) -> dict[str, Any]:
    return {
        "kind": subject.kind,
        "items": subject.items,
        "facts": subject.facts or {},
        "expected_count": subject.expected_count,
        "is_customer_facing": subject.is_customer_facing,
    }


def subject_from_snapshot(snapshot: dict[str, Any]) -> EvaluationSubject:
    """The subject an evaluation recorded, for a replay or an edit's re-evaluation."""
    from skills.base import EvaluationSubject

    return EvaluationSubject(
        kind=snapshot.get("kind", ""),
        items=list(snapshot.get("items") or []),
        facts=dict(snapshot.get("facts") or {}),
        expected_count=snapshot.get("expected_count"),
        is_customer_facing=bool(snapshot.get("is_customer_facing")),
    )


def _dec(value: float) -> Decimal:
    return Decimal(str(round(min(1.0, max(0.0, value)), 4)))


# --- a person's edit --------------------------------------------------------------------------

EDITABLE_TEXT_FIELDS = ("subject", "body", "text", "reply", "draft", "message")


@transaction.atomic
def evaluate_edit(
    *,
    request: ActionRequest,
    edited_payload: dict[str, Any],
    original_output_evaluation: Evaluation | None,
    provider: LlmProvider | None = None,
) -> Evaluation:
    """Re-evaluate a person's edit of a proposed email before it is approved, as the AI's output
    was: same checks, same facts (the lead's data recorded with the original evaluation), same
    judge. The new evaluation points at the original one, so the pair (AI output, human edit) is
    kept. An edit that introduces a forbidden claim, drops the postal address or invents a number
    is caught before anyone approves it.

    The release policy's decision is recorded on it too (with the proposing skill's triggers), as
    advice for the approver: an edit is never released without the approver's click.
    """
    from approvals import registry as action_registry
    from evaluation.release import release_decide
    from skills.base import EvaluationSubject

    original_subject = (original_output_evaluation.subject if original_output_evaluation else {}) or {}
    key, original_item = _item_for(request, original_subject)
    item = {**original_item, "key": key}
    for name in EDITABLE_TEXT_FIELDS:
        if name in edited_payload:
            item[name] = edited_payload[name]
    if "to" in edited_payload:
        item["to"] = edited_payload["to"]
    facts = (original_subject.get("facts") or {}).get(key)
    subject = EvaluationSubject(
        kind=original_subject.get("kind") or "emails",
        items=[item],
        facts={key: facts} if facts is not None else {},
        expected_count=1,
        is_customer_facing=bool(original_subject.get("is_customer_facing", True)),
    )
    evaluation = evaluate(
        subject=subject,
        output=edited_payload,
        output_schema=action_registry.get_kind(request.kind).schema,
        run=request.skill_run,
        request=request,
        provider=provider,
        subject_kind=SubjectKind.EDIT,
        original=original_output_evaluation,
    )
    release_decide(
        evaluation,
        triggers=_triggers_for(request),
        first_run=False,
        budget_impact_usd=Decimal("0"),
    )
    return evaluation


def _item_for(request: ActionRequest, snapshot: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The original item the request was proposed from: matched by recipient, else by the
    request's target as the item key."""
    payload = request.original_payload or request.payload or {}
    recipient = str(payload.get("to") or request.target or "").lower()
    for index, item in enumerate(snapshot.get("items") or []):
        key = str(item.get("key", index))
        if recipient and (str(item.get("to") or "").lower() == recipient or key.lower() == recipient):
            return key, dict(item)
    return recipient or f"request-{request.pk}", {}


def _triggers_for(request: ActionRequest):
    from skills import registry
    from skills.contracts import ReviewTriggers
    from skills.errors import UnknownSkill

    if request.skill_run_id:
        try:
            return registry.get(request.skill_run.skill).contract.review_triggers
        except UnknownSkill:
            pass
    return ReviewTriggers()


def edit_evaluate_latest(*, request_id: int) -> Evaluation | None:
    """The task's entry point: evaluate a request's current payload against the latest evaluation
    of the run that proposed it. A payload already evaluated (a redelivered task, a repeated edit
    back to the same text) is not evaluated again: its evaluation is returned."""
    from approvals.models import ActionRequest

    request = ActionRequest.objects.select_related("skill_run").filter(pk=request_id).first()
    if request is None:
        return None
    existing = (
        Evaluation.objects.filter(request=request, subject_kind=SubjectKind.EDIT, output=request.payload)
        .order_by("-created_at", "-pk")
        .first()
    )
    if existing is not None:
        return existing
    original = None
    if request.skill_run_id:
        original = (
            Evaluation.objects.filter(run_id=request.skill_run_id, subject_kind=SubjectKind.OUTPUT)
            .order_by("-created_at", "-pk")
            .first()
        )
    return evaluate_edit(request=request, edited_payload=request.payload, original_output_evaluation=original)
