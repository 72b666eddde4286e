"""Starting and running skills: inputs checked, worst case reserved against the budget before
anything runs, data requirements, SLA time-out, retry budget, failure modes, evaluation, the
release policy and the proposals — and a run is never left running.

``skill_run_start`` is what the admin, the API, schedules, redos and the canary call;
``skill_run_execute`` is what the worker calls (``skills.tasks.run_skill``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from skills import registry
from skills.base import ProposedAction, Records, Skill
from skills.contracts import FailureMode, SkillContract
from skills.errors import (
    InputsInvalid,
    InsufficientData,
    ProviderError,
    RunRefused,
    SkillError,
)
from skills.models import RunStatus, SkillRun, Trigger
from skills.providers import provider_for
from skills.services.context import DataUnavailable, RunContext, SlaTimeout

logger = logging.getLogger(__name__)

START_PERMISSION = "skills.start_skillrun"
# How long after its SLA maximum a run still counts as alive (the worker's hard limit + margin):
# past it the sweep ends the run as failed and releases its reservation.
SLA_GRACE_SECONDS = 30
# A queued run whose message never reached a worker (broker down at commit) is re-sent after this.
QUEUED_RESEND_AFTER = timedelta(minutes=2)
CACHE_MAX_AGE = timedelta(hours=24)  # data_unavailable: the last good output for the same inputs


def _inputs_hash(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:32]


def skill_run_start(
    *,
    skill: str,
    inputs: dict[str, Any],
    acting_user: User | None = None,
    execution_mode: str = "",
    idempotency_key: str = "",
    trigger: str = Trigger.ADMIN,
    schedule=None,
    parent: SkillRun | None = None,
    redo_of_request=None,
    instructions: str = "",
) -> SkillRun:
    """Start a run: refuse bad inputs (InputsInvalid, nothing written), return the first run for a
    repeated key, reserve the worst case against every budget (a refusal is recorded as a
    ``refused`` run with the reason, and costs nothing), and enqueue it after commit."""
    from tenants.budget import budget_reserve
    from tenants.budget.errors import BudgetRefused, BudgetUnavailable, Unpriced

    if acting_user is not None and not acting_user.has_perm(START_PERMISSION):
        raise RunRefused("Your role cannot start skill runs (RevOps and tenant admins can).")
    spec = registry.get(skill)
    contract = spec.contract
    inputs = registry.validate_inputs(contract, inputs)
    mode = execution_mode or contract.default_mode
    if mode not in contract.modes:
        raise InputsInvalid(
            f"{contract.name} runs in {', '.join(contract.modes)} mode only, not {mode!r}.",
            {"execution_mode": [f"Choose one of: {', '.join(contract.modes)}."]},
        )
    key = idempotency_key or f"{trigger}:{skill}:{_inputs_hash(inputs)}:{timezone.now().isoformat()}"
    if len(key) > 200:
        raise InputsInvalid(
            "The idempotency key is longer than 200 characters.", {"idempotency_key": ["Too long."]}
        )
    existing = SkillRun.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing

    from mh1.context import correlation_id

    refusal = _start_refusal()
    try:
        with transaction.atomic():
            run = SkillRun.objects.create(
                skill=skill,
                skill_version=contract.version,
                inputs=inputs,
                execution_mode=mode,
                idempotency_key=key,
                correlation_id=correlation_id.get() if correlation_id.get() != "-" else "",
                trigger=trigger,
                requested_by=acting_user,
                schedule=schedule,
                parent=parent,
                redo_of_request=redo_of_request,
                instructions=instructions,
                model=contract.llm.model,
            )
            if refusal:
                return _refuse(run, refusal)
            max_in, max_out = contract.worst_case_tokens()
            try:
                with transaction.atomic():
                    reservation = budget_reserve(
                        key=run.budget_key,
                        skill=skill,
                        model=_priced_model(contract),
                        max_input_tokens=max_in,
                        max_output_tokens=max_out,
                        timeout_seconds=contract.sla.max_seconds + SLA_GRACE_SECONDS,
                    )
            except (BudgetRefused, BudgetUnavailable, Unpriced) as exc:
                # fail closed: when the spend cannot be read or priced, nothing runs
                return _refuse(run, exc.message or str(exc))
            run.reserved_usd = reservation.reserved_usd
            run.save(update_fields=["reserved_usd"])
            transaction.on_commit(lambda: _enqueue(run), robust=True)
    except IntegrityError:
        existing = SkillRun.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return existing
    return run


def _priced_model(contract: SkillContract) -> str:
    """The model the reservation is priced at: the contract's, or the default provider's."""
    return contract.llm.model or provider_for(contract.llm.model).default_model


def _start_refusal() -> str:
    """Why no run may start in this tenant now ('' when it may). The actions a run proposes are
    gated again where they take effect (approvals.gates); this only saves starting a run that
    could do nothing."""
    from tenants.policy.models import RolloutSettings
    from tenants.services import global_kill_switch_on

    if global_kill_switch_on():
        return "The global kill switch is on: no skill runs."
    rollout = RolloutSettings.get_solo()
    if rollout.kill_switch:
        return f"The tenant kill switch is on: {rollout.kill_switch_reason or 'no reason given'}."
    return ""


def _refuse(run: SkillRun, reason: str) -> SkillRun:
    run.status = RunStatus.REFUSED
    run.refusal_reason = reason
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "refusal_reason", "finished_at"])
    logger.info("skill run %s (%s) refused: %s", run.pk, run.skill, reason)
    return run


def _enqueue(run: SkillRun) -> None:
    from django.db import connection

    from mh1.tenancy import enqueue_quietly
    from skills.tasks import run_skill

    contract = registry.get(run.skill).contract
    enqueue_quietly(
        run_skill,
        (connection.schema_name, run.pk),
        what=f"skill run {run.pk}",
        soft_time_limit=contract.sla.max_seconds,
        time_limit=contract.sla.max_seconds + SLA_GRACE_SECONDS // 2,
    )


# --- the worker's side ----------------------------------------------------------------------------


def _claim(run_id: int) -> SkillRun | None:
    """queued → running under the row lock; None when the run is not queued (a repeat delivery)."""
    with transaction.atomic():
        run = SkillRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return None
        contract = registry.get(run.skill).contract
        now = timezone.now()
        run.status = RunStatus.RUNNING
        run.started_at = now
        run.deadline_at = now + timedelta(seconds=contract.sla.max_seconds)
        run.save(update_fields=["status", "started_at", "deadline_at"])
        return run


def skill_run_execute(run_id: int, *, clock=time.monotonic) -> SkillRun | None:
    """Run a queued run to its end. Whatever happens, the run ends in a final status and its
    reservation is settled: SLA time-out → the partial result (abort_return_partial); provider
    failures → retried within the retry budget, then the contract's failure mode."""
    run = _claim(run_id)
    if run is None:
        return None
    spec = registry.get(run.skill)
    contract = spec.contract
    ctx = RunContext(
        run=run,
        contract=contract,
        provider=provider_for(contract.llm.model),
        deadline=clock() + contract.sla.max_seconds,
        instructions=run.instructions,
        clock=clock,
    )
    try:
        _execute(run, spec, ctx)
    except Exception as exc:  # the run must end: a failure of ours is a complete failure
        logger.exception("skill run %s (%s) failed", run.pk, run.skill)
        _finish(run, RunStatus.FAILED, fallback=FailureMode.COMPLETE_FAILURE, error=_error_report(exc, ctx))
    return run


def _execute(run: SkillRun, spec: Skill, ctx: RunContext) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    contract = spec.contract
    try:
        with ctx.step("load"):
            records = spec.load(ctx, run.inputs)
    except DataUnavailable as exc:
        cached = _cached_output(run)
        if cached is None:
            _finish(
                run, RunStatus.FAILED, fallback=FailureMode.COMPLETE_FAILURE, error=f"Data unavailable: {exc}"
            )
            return
        run.output = cached.output
        run.data_warnings = [
            f"Data unavailable ({exc}); showing run #{cached.pk}'s output of "
            f"{cached.finished_at:%Y-%m-%d %H:%M} UTC."
        ]
        _finish(run, RunStatus.PARTIAL, fallback=FailureMode.DATA_UNAVAILABLE)
        return
    except InsufficientData as exc:  # the skill found what it needs missing (no messaging pack…)
        _finish(run, RunStatus.REFUSED, refusal=exc.message)
        return
    try:
        run.data_warnings = data_requirements_check(contract, records)
    except InsufficientData as exc:
        _finish(run, RunStatus.REFUSED, refusal=exc.message)
        return

    output: dict[str, Any] | None = None
    errors: list[str] = []
    for attempt in range(1, contract.retry_budget + 2):
        ctx.attempt = attempt
        run.attempts = attempt
        try:
            output = _attempt(spec, ctx, run, records)
            break
        except (SlaTimeout, SoftTimeLimitExceeded) as exc:
            return _timed_out(run, ctx, exc)
        except (ProviderError, SkillError) as exc:
            errors.append(f"attempt {attempt}: {exc}")
            logger.warning("skill run %s attempt %s failed: %s", run.pk, attempt, exc)
    if output is None:
        if ctx.partial is not None:
            run.output = ctx.partial
            _finish(
                run,
                RunStatus.PARTIAL,
                fallback=FailureMode.PARTIAL_SUCCESS,
                error="; ".join(errors),
            )
        else:
            _finish(run, RunStatus.FAILED, fallback=FailureMode.COMPLETE_FAILURE, error="; ".join(errors))
        return

    evaluation, outcome = _evaluate(spec, ctx, run, output, records)
    while outcome.decision == "auto_refine" and run.refinements < contract.retry_budget:
        run.refinements += 1
        ctx.instructions = "\n".join(filter(None, [run.instructions, *(evaluation.suggestions or [])]))
        try:
            with ctx.step(f"refine {run.refinements}"):
                output = _attempt(spec, ctx, run, records, step=False)
        except (SlaTimeout, SoftTimeLimitExceeded) as exc:
            ctx.checkpoint(output)
            return _timed_out(run, ctx, exc)
        except (ProviderError, SkillError) as exc:
            errors.append(f"refinement {run.refinements}: {exc}")
            break
        evaluation, outcome = _evaluate(spec, ctx, run, output, records)
    decision, reasons = outcome.decision, list(outcome.reasons)
    if decision == "auto_refine":
        decision = "human_review"
        reasons.append(f"Still below the bar after {run.refinements} refinement(s): a person decides.")
    run.output = output
    run.release_decision = decision
    run.release_reasons = reasons
    if not evaluation.passed:
        run.validated = False
        run.fallback = FailureMode.QUALITY_BELOW_THRESHOLD
    if run.execution_mode == "execute" and decision != "blocked":
        with ctx.step("apply"):
            # the console's own data (scores on leads): never a vendor effect, which only an
            # action request reaches
            spec.apply(ctx, output, records)
    with ctx.step("propose"):
        actions = spec.actions(ctx, output, records) if run.execution_mode != "suggest" else []
        proposed = _propose(run, actions, evaluation)
    run.output = {**output, "_proposals": proposed}
    _finish(run, RunStatus.SUCCEEDED, error="; ".join(errors))


def _attempt(
    spec: Skill, ctx: RunContext, run: SkillRun, records: Records, *, step: bool = True
) -> dict[str, Any]:
    from jsonschema import Draft202012Validator

    from skills.errors import ProviderOutputInvalid

    if step:
        with ctx.step(f"run (attempt {ctx.attempt})"):
            output = spec.run(ctx, run.inputs, records)
    else:
        output = spec.run(ctx, run.inputs, records)
    problems = sorted(Draft202012Validator(spec.contract.output_schema).iter_errors(output), key=str)
    if problems:
        where = "/".join(str(p) for p in problems[0].absolute_path) or "(root)"
        raise ProviderOutputInvalid(
            f"The output does not fit {spec.contract.slug}'s schema at {where}: {problems[0].message}"
        )
    return output


def data_requirements_check(contract: SkillContract, records: Records) -> list[str]:
    """Warnings (warn and continue) or InsufficientData (refuse), by the contract."""
    data = contract.data
    problems: list[str] = []
    count = len(records.items) if records.meta.get("count") is None else int(records.meta["count"])
    if count < data.min_records:
        problems.append(f"{count} record(s), the contract needs at least {data.min_records}")
    coverage = records.meta.get("coverage") or {}
    for field, share in data.required_coverage.items():
        have = coverage.get(field)
        if have is None and records.items:
            have = sum(1 for item in records.items if item.get(field) not in (None, "", [])) / len(
                records.items
            )
        if have is not None and have < share:
            problems.append(f"{field} is filled in {have:.0%} of records, the contract needs {share:.0%}")
    if problems and data.on_insufficient == "refuse":
        raise InsufficientData("Not enough data: " + "; ".join(problems) + ".")
    return problems


def _evaluate(spec: Skill, ctx: RunContext, run: SkillRun, output: dict[str, Any], records: Records):
    from evaluation.release import release_decide
    from evaluation.services import evaluate

    contract = spec.contract
    with ctx.step("evaluate"):
        run.refresh_from_db(fields=["input_tokens", "output_tokens", "cached_input_tokens", "cost_usd"])
        max_in, max_out = contract.worst_case_tokens()
        evaluation = evaluate(
            subject=spec.subject(output, records),
            output=output,
            output_schema=contract.output_schema,
            run=run,
            tokens_used=run.input_tokens + run.output_tokens,
            token_budget=max_in + max_out,
        )
        first_run = (
            not SkillRun.objects.filter(skill=run.skill, status=RunStatus.SUCCEEDED)
            .exclude(pk=run.pk)
            .exists()
        )
        outcome = release_decide(
            evaluation,
            triggers=contract.review_triggers,
            first_run=first_run,
            budget_impact_usd=Decimal(str(output.get("budget_impact_usd", "0") or "0")),
        )
    run.evaluation_score = Decimal(str(round(float(evaluation.score_used), 3)))
    run.release_decision = outcome.decision
    run.release_reasons = list(outcome.reasons)
    run.save(
        update_fields=["evaluation_score", "release_decision", "release_reasons", "refinements", "attempts"]
    )
    return evaluation, outcome


def _propose(run: SkillRun, actions: list[ProposedAction], evaluation) -> list[dict[str, Any]]:
    """Each action into the approval queue with the run's evaluation; a refused one is reported
    (suppressed, excluded…) and the others still go."""
    from approvals.errors import ApprovalError
    from approvals.services import action_propose

    allowed = set(registry.get(run.skill).contract.action_kinds)
    results: list[dict[str, Any]] = []
    for action in actions:
        entry: dict[str, Any] = {"key": action.key, "kind": action.kind, "summary": action.summary}
        if action.kind not in allowed:
            entry["refused"] = f"{run.skill}'s contract does not allow {action.kind}."
            results.append(entry)
            continue
        try:
            with transaction.atomic():
                request = action_propose(
                    kind=action.kind,
                    payload=action.payload,
                    idempotency_key=f"run:{run.pk}:{action.key}"[:200],
                    run=run,
                    execution_mode=run.execution_mode,
                    evaluation_score=float(run.evaluation_score)
                    if run.evaluation_score is not None
                    else None,
                    release_decision=run.release_decision,
                    redo_of=run.redo_of_request if run.redo_of_request_id else None,
                    summary=action.summary,
                    reasoning=action.reasoning,
                    evaluation=evaluation,
                )
        except ApprovalError as exc:
            entry["refused"] = exc.message or str(exc)
        else:
            entry["request_id"] = request.pk
            entry["status"] = request.status
        results.append(entry)
    return results


def _timed_out(run: SkillRun, ctx: RunContext, exc: BaseException) -> None:
    """SLA maximum reached: abort and return the partial result (the contract's timeout action)."""
    message = str(exc) or f"{run.skill} passed its SLA maximum of {ctx.contract.sla.max_seconds} s."
    if ctx.partial is not None:
        run.output = ctx.partial
        _finish(run, RunStatus.PARTIAL, fallback=FailureMode.PARTIAL_SUCCESS, error=message)
    else:
        _finish(run, RunStatus.FAILED, fallback=FailureMode.COMPLETE_FAILURE, error=message)


def _cached_output(run: SkillRun) -> SkillRun | None:
    return (
        SkillRun.objects.filter(
            skill=run.skill,
            inputs=run.inputs,
            status=RunStatus.SUCCEEDED,
            finished_at__gte=timezone.now() - CACHE_MAX_AGE,
        )
        .exclude(pk=run.pk)
        .order_by("-finished_at")
        .first()
    )


def _error_report(exc: BaseException, ctx: RunContext) -> str:
    step = f" in step “{ctx.last_step}”" if ctx.last_step else ""
    return f"Complete failure{step}: {type(exc).__name__}: {exc}"[:4000]


def _finish(
    run: SkillRun,
    status: str,
    *,
    fallback: str = "",
    error: str = "",
    refusal: str = "",
) -> None:
    """The run's final state, and its reservation settled: what was spent stays, the rest is
    released."""
    from tenants.budget import budget_settle

    run.status = status
    if fallback:
        run.fallback = fallback
    run.error = error[:4000]
    run.refusal_reason = refusal
    run.finished_at = timezone.now()
    if status == RunStatus.FAILED and run.output is None:
        run.output = {"error_report": run.error, "last_step": ""}
    run.save()
    try:
        budget_settle(key=run.budget_key, usd=Decimal("0"), tokens=0, final=True)
    except Exception:
        # the sweep releases it (budget_reservations_sweep) and reconciles the counters
        logger.exception("skill run %s: settling its reservation failed", run.pk)


# --- sweeps ---------------------------------------------------------------------------------------


def skill_runs_end_stale(*, now=None) -> int:
    """Runs still running past their SLA maximum plus the grace (the worker died or hung) end as
    failed and their reservations are released. Returns how many."""
    now = now or timezone.now()
    ended = 0
    stale = SkillRun.objects.filter(
        status=RunStatus.RUNNING, deadline_at__lt=now - timedelta(seconds=SLA_GRACE_SECONDS)
    ).values_list("pk", flat=True)
    for run_id in stale[:500]:
        with transaction.atomic():
            run = (
                SkillRun.objects.select_for_update(skip_locked=True)
                .filter(pk=run_id, status=RunStatus.RUNNING)
                .first()
            )
            if run is None:
                continue
            _finish(
                run,
                RunStatus.FAILED,
                fallback=FailureMode.COMPLETE_FAILURE,
                error=(
                    f"The worker never finished: ended by the sweep {SLA_GRACE_SECONDS} s after "
                    "the SLA maximum."
                ),
            )
            ended += 1
    return ended


def skill_runs_resend_queued(*, now=None) -> int:
    """Queued runs whose message was lost (broker down at commit) are sent again; the claim's
    state guard makes a duplicate delivery harmless."""
    now = now or timezone.now()
    runs = list(
        SkillRun.objects.filter(status=RunStatus.QUEUED, created_at__lt=now - QUEUED_RESEND_AFTER)[:200]
    )
    for run in runs:
        _enqueue(run)
    return len(runs)
