"""The admin is the queue: my queue, filters, SLA column, bulk decisions, detail with timeline."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from solo.admin import SingletonModelAdmin

from approvals import gates, selectors, services
from approvals.context import decision_context
from approvals.errors import ApprovalError
from approvals.flags import flag_words, flags_of
from approvals.models import (
    OPEN_STATUSES,
    RESOLVABLE_STATUSES,
    ActionRequest,
    ApproverRule,
    EscalationPolicy,
    Status,
)
from approvals.preview import edit_diff, render_preview
from evaluation.display import dimensions_table
from mh1.admin_search import Exact, VolumeAdminMixin, email_or_text_exact, int_exact
from mh1.admin_sites import tenant_site
from mh1.times import zone_name
from tenants.services import user_role


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("all", "All"), *Status.choices]

    def choices(self, changelist):
        value = self.value() or Status.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or Status.PENDING
        return queryset if value == "all" else queryset.filter(status=value)


class MyQueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("mine", "Assigned to me or my role"), ("unassigned", "Nobody in particular")]

    def queryset(self, request, queryset):
        if self.value() == "mine":
            role = user_role(request.user)
            mine = Q(assigned_to=request.user)
            if role is not None:
                mine |= Q(assigned_to__isnull=True, assigned_role=role.value)
            return queryset.filter(mine)
        if self.value() == "unassigned":
            return queryset.filter(assigned_to__isnull=True)
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("on_time", "Within SLA")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.filter(status=Status.PENDING, sla_due_at__lt=now)
        if self.value() == "on_time":
            return queryset.filter(sla_due_at__gte=now)
        return queryset


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))
    redo_instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Optional: how the skill should redo it, e.g. 'shorter, no pricing claims'.",
    )


class DelegateForm(forms.Form):
    """Lists only colleagues whose role may approve the requests' kinds (never you, never the
    requester of a single request): the service refuses anyone else as well."""

    to_user = forms.ModelChoiceField(queryset=User.objects.none(), label="Delegate to")
    # A browser's date-time picker; read in the tenant's time zone (the middleware activates it).
    until = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional end (out of office); afterwards the roster takes over again.",
    )
    comment = forms.CharField(required=False)

    def __init__(self, *args, requests: list[ActionRequest], acting_user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["until"].label = f"Until ({zone_name()} time)"
        exclude = [acting_user, *(r.requested_by for r in requests if len(requests) == 1)]
        self.fields["to_user"].queryset = selectors.delegate_candidates(
            [r.kind for r in requests], exclude=exclude
        )


class ResolveForm(forms.Form):
    reason = forms.CharField(max_length=1000, help_text="What you checked at the vendor.")


class EmailEditForm(forms.Form):
    subject = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"size": 70}))
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 10, "cols": 80}))

    def clean_body(self) -> str:
        # browsers post a textarea's lines with CRLF: stored with \n as every other body, so the
        # edit's diff shows the words changed, not every line end
        return self.cleaned_data["body"].replace("\r\n", "\n").replace("\r", "\n")


def _not_yours_to_decide(user, obj: ActionRequest, approver_ids: list[int]) -> str:
    """Why a person who holds the scope still may not decide this request ("" when they may):
    the requester never approves their own action, and an approver of a request that needs two
    cannot be the second. ``approver_ids``: who approved it so far."""
    if obj.requested_by_id is not None and obj.requested_by_id == user.pk:
        return "You requested this action; someone else decides it."
    if user.pk in approver_ids:
        return (
            f"You approved this request ({len(approver_ids)} of {obj.approvals_required} approvals "
            "needed); a second, different approver decides it."
        )
    return ""


# Characters of the queue's "subject / summary" column (the columns fit a 1366 px screen).
SUMMARY_CHARS = 60
# The release policy's decision, as the AE reads it on the card.
RELEASE_WORDS = {
    "auto_deliver": "Auto-deliver: the evaluation passed and no review trigger fired.",
    "auto_refine": "Auto-refine: the output was sent back to the skill with the evaluator's suggestions.",
    "human_review": "Human review: a review trigger fired, so a person decides (the reasons are below).",
    "blocked": "Blocked: a critical finding; this must not be sent as it is.",
}
# Per-request lines shown after a bulk action (the rest are counted).
BULK_LINES_SHOWN = 25


def approval_outcome(approved: ActionRequest) -> tuple[str, int]:
    """What an approval did, in words, with the message level: recorded but waiting for another
    approver, approved but stopped by a gate that is closed now (kill switch, phase, suppression
    …), or approved and on its way."""
    current = ActionRequest.objects.get(pk=approved.pk)
    if current.status == Status.PENDING:
        given = current.approvals.count()
        return (
            f"Request #{current.pk}: your approval is recorded ({given} of {current.approvals_required} "
            "approvals needed); it waits for another approver.",
            messages.INFO,
        )
    if current.status == Status.APPROVED:
        gate = gates.closed_gate(current)
        if gate is not None:
            return (
                f"Request #{current.pk} approved, but it will not run now: {gate.reason}",
                messages.WARNING,
            )
        return (f"Request #{current.pk} approved; it is queued to run.", messages.SUCCESS)
    return (
        f"Request #{current.pk} approved; it is now {current.get_status_display().lower()}."
        + (f" {current.error}" if current.error else ""),
        messages.WARNING if current.status in (Status.CANCELLED, Status.FAILED) else messages.SUCCESS,
    )


@admin.register(ActionRequest, site=tenant_site)
class ActionRequestAdmin(VolumeAdminMixin, admin.ModelAdmin):
    # Eight columns that fit a 1366 px screen beside the navigation and the filters (a browser test
    # checks the list does not scroll sideways): the request (number and kind) is the link, the
    # escalation level rides with the age.
    list_display = (
        "request_link",
        "target",
        "one_line",
        "impact_badge",
        "flags_short",
        "status",
        "assignee",
        "age_sla",
    )
    list_display_links = ("request_link",)
    list_filter = (StatusFilter, MyQueueFilter, OverdueFilter, "kind", "impact_level")
    exact_search_fields = (
        Exact("id", int_exact),
        Exact("idempotency_key"),
        Exact("correlation_id"),
        Exact("target", email_or_text_exact),
    )
    ordering = ("deadline", "id")
    list_select_related = ("assigned_to",)
    list_per_page = 50
    actions = ("approve_selected", "reject_selected", "delegate_selected")
    change_form_template = "admin/approvals/actionrequest/change_form.html"
    # The card above decides; the stored fields are behind one "details" toggle each.
    fieldsets = (
        (
            "Details",
            {
                "classes": ("collapse",),
                "fields": ("kind", "target", "status", "execution_mode", "impact_level", "risk_flags"),
            },
        ),
        (
            "Evaluation",
            {"classes": ("collapse",), "fields": ("evaluation_score", "release_decision", "ai_decision")},
        ),
        (
            "Routing",
            {
                "classes": ("collapse",),
                "fields": (
                    "assigned_to",
                    "assigned_role",
                    "delegated_until",
                    "sla_due_at",
                    "deadline",
                    "escalation_level",
                ),
            },
        ),
        (
            "Origin",
            {
                "classes": ("collapse",),
                "fields": (
                    "requested_by",
                    "requested_by_skill_run",
                    "idempotency_key",
                    "correlation_id",
                    "redo_of",
                ),
            },
        ),
        ("Payload", {"classes": ("collapse",), "fields": ("payload", "original_payload", "payload_diff")}),
        (
            "Outcome",
            {
                "classes": ("collapse",),
                "fields": (
                    "attempts",
                    "result",
                    "error",
                    "rejection_reason",
                    "redo_instructions",
                    "cancel_reason",
                    "decided_at",
                    "executed_at",
                ),
            },
        ),
    )

    def history_view(self, request, object_id, extra_context=None):
        """The "History" button shows the request's timeline (proposed, approvals, edits, execution),
        not the stock admin log, which our services do not write to."""
        return HttpResponseRedirect(
            reverse("admin:approvals_actionrequest_change", args=[object_id]) + "#timeline"
        )

    def get_object(self, request, object_id, from_field=None):
        """Read once per request (the decision card and the stock change view both ask for it)."""
        cached = getattr(request, "_mh1_action_request", None)
        if cached is not None and str(cached.pk) == str(object_id):
            return cached
        obj = super().get_object(request, object_id, from_field)
        request._mh1_action_request = obj
        return obj

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match and match.url_name == "approvals_actionrequest_change":
            queryset = queryset.select_related("skill_run", "requested_by", "assigned_to")
        if match and match.url_name == "approvals_actionrequest_changelist":
            # the list shows none of the (possibly large) JSON documents
            # (only the email's subject is read out of the payload, in SQL, for its column)
            queryset = queryset.defer(
                "payload", "original_payload", "payload_diff", "result", "error"
            ).annotate(payload_subject=KeyTextTransform("subject", "payload"))
        return queryset

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # decisions go through the buttons below, never through a raw form

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        scopes = ("approve_crm_write", "approve_email_send", "approve_enrichment", "approve_campaign_change")
        if not any(request.user.has_perm(f"approvals.{s}") for s in scopes):
            for name in ("approve_selected", "reject_selected", "delegate_selected"):
                actions.pop(name, None)
        return actions

    @admin.display(description="request", ordering="id")
    def request_link(self, obj: ActionRequest) -> str:
        return f"#{obj.pk} {obj.get_kind_display()}"

    @admin.display(description="subject / summary")
    def one_line(self, obj: ActionRequest) -> str:
        """One line an AE can triage by: the email's subject, else the proposer's one-line summary,
        else the kind's own words."""
        subject = getattr(obj, "payload_subject", None)
        if subject is None and "payload" in obj.__dict__:  # not the list's queryset: read it
            subject = (obj.payload or {}).get("subject")
        text = str(subject or obj.summary or obj.get_kind_display())
        return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"

    @admin.display(description="flags")
    def flags_short(self, obj: ActionRequest) -> str:
        words = [flag_words(str(flag), obj.kind) for flag in obj.risk_flags or ()]
        if not words:
            return "—"
        shown = "; ".join(words[:2])
        return shown + (f" (+{len(words) - 2})" if len(words) > 2 else "")

    @admin.display(description="impact", ordering="impact_level")
    def impact_badge(self, obj: ActionRequest):
        colours = {"low": "#417690", "medium": "#b58105", "high": "#ba2121", "critical": "#7a0000"}
        return format_html(
            '<strong style="color:{}">{}</strong>', colours[obj.impact_level], obj.impact_level
        )

    @admin.display(description="assigned")
    def assignee(self, obj: ActionRequest) -> str:
        if obj.assigned_to_id:
            return obj.assigned_to.get_username()
        return f"role: {obj.get_assigned_role_display()}" if obj.assigned_role else "—"

    @admin.display(description="age / SLA", ordering="created_at")
    def age_sla(self, obj: ActionRequest):
        age = timesince(obj.created_at)
        if obj.status != Status.PENDING:
            return age
        escalated = format_html(" · escalated L{}", obj.escalation_level) if obj.escalation_level > 1 else ""
        if obj.sla_due_at < timezone.now():
            return format_html(
                '{} <strong style="color:#ba2121">overdue {}</strong>{}',
                age,
                timesince(obj.sla_due_at),
                escalated,
            )
        return format_html("{} (due in {}){}", age, timesince(timezone.now(), obj.sla_due_at), escalated)

    # --- bulk actions -------------------------------------------------------------------------

    def _bulk(self, request, queryset, form_class, title, run):
        """Apply ``run`` to each selected request; then one line per request saying what happened
        to it (``run`` may return its own (text, level)), after a count of done and failed."""
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                results: list[tuple[str, int]] = []
                done = failed = 0
                for obj in queryset.order_by("pk"):
                    try:
                        said = run(obj, form.cleaned_data)
                        done += 1
                        results.append(
                            said if isinstance(said, tuple) else (f"#{obj.pk}: done.", messages.SUCCESS)
                        )
                    except ApprovalError as exc:
                        failed += 1
                        results.append((f"#{obj.pk}: {exc.message}", messages.ERROR))
                summary = f"{title}: {done} of {done + failed} request(s) done" + (
                    f", {failed} refused." if failed else "."
                )
                self.message_user(request, summary, messages.SUCCESS if not failed else messages.WARNING)
                for text, level in results[:BULK_LINES_SHOWN]:
                    self.message_user(request, text, level)
                if len(results) > BULK_LINES_SHOWN:
                    self.message_user(
                        request, f"… and {len(results) - BULK_LINES_SHOWN} more.", messages.INFO
                    )
                return None
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "queryset": queryset,
            "action": request.POST.get("action"),
            "opts": self.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/approvals/actionrequest/bulk_form.html", context)

    @admin.action(description="Approve selected requests")
    def approve_selected(self, request, queryset):
        return self._bulk(
            request,
            queryset,
            DecisionForm,
            "Approve",
            lambda obj, data: approval_outcome(
                services.action_approve(request_id=obj.pk, acting_user=request.user, comment=data["comment"])
            ),
        )

    @admin.action(description="Reject selected requests (with a reason)")
    def reject_selected(self, request, queryset):
        return self._bulk(
            request,
            queryset,
            RejectForm,
            "Reject",
            lambda obj, data: services.action_reject(
                request_id=obj.pk,
                acting_user=request.user,
                reason=data["reason"],
                redo_instructions=data["redo_instructions"],
            ),
        )

    @admin.action(description="Delegate selected requests")
    def delegate_selected(self, request, queryset):
        selected = list(queryset.select_related("requested_by"))
        return self._bulk(
            request,
            queryset,
            partial(DelegateForm, requests=selected, acting_user=request.user),
            "Delegate",
            lambda obj, data: services.action_delegate(
                request_id=obj.pk,
                acting_user=request.user,
                to_user=data["to_user"],
                until=data["until"],
                comment=data["comment"],
            ),
        )

    # --- detail page and its decision buttons ------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/decide/<str:decision>/",
                view(self.decide_view),
                name="approvals_actionrequest_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            closed = gates.gates_now(obj) if obj.status in OPEN_STATUSES else []
            may_decide = obj.status == Status.PENDING and services.can_decide(request.user, obj)
            context = decision_context(obj)
            if context.content_type:
                # read with the card (render_change_form asks for it; django-tenants empties
                # Django's content-type cache on every schema switch, so it was a query a page)
                pk, app_label, model = context.content_type
                ContentType.objects._add_to_cache(
                    ContentType.objects.db, ContentType(pk=pk, app_label=app_label, model=model)
                )
            approver_ids = [approver["id"] for approver in context.approvers]
            not_yours = _not_yours_to_decide(request.user, obj, approver_ids) if may_decide else ""
            extra.update(
                preview=render_preview(obj),
                context=context,
                evaluation_table=dimensions_table(context.evaluation["dimensions"])
                if context.evaluation
                else "",
                edit_evaluation_table=dimensions_table(context.edit_evaluation["dimensions"])
                if context.edit_evaluation
                else "",
                edits=edit_diff(obj.payload_diff) if obj.payload_diff else "",
                release_words=RELEASE_WORDS.get(obj.release_decision, ""),
                flags=flags_of(obj, closed),
                timeline=context.timeline,
                can_decide=may_decide and not not_yours,
                not_yours=not_yours,
                reject_form=RejectForm(),
                delegate_form=DelegateForm(requests=[obj], acting_user=request.user),
                email_form=EmailEditForm(initial=obj.payload) if obj.kind == "email.send" else None,
                gates_now=closed,
                can_resolve=obj.status in RESOLVABLE_STATUSES
                and request.user.has_perm(services.RESOLVE_PERMISSION),
                resolve_form=ResolveForm(),
            )
        return super().change_view(request, object_id, form_url, extra)

    def decide_view(self, request, pk: int, decision: str):
        if request.method != "POST":
            raise PermissionDenied
        obj = get_object_or_404(ActionRequest, pk=pk)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        forms_by_decision = {
            "approve": DecisionForm,
            "reject": RejectForm,
            "delegate": DelegateForm,
            "edit": EmailEditForm,
            "requeue": ResolveForm,
            "resolve_executed": ResolveForm,
            "resolve_failed": ResolveForm,
        }
        form_class = forms_by_decision.get(decision)
        if form_class is None:
            raise PermissionDenied
        back = reverse("admin:approvals_actionrequest_change", args=[pk])
        if decision == "delegate":
            try:
                services.delegation_check_actor(request.user, obj)
            except ApprovalError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return HttpResponseRedirect(back)
            form = DelegateForm(request.POST, requests=[obj], acting_user=request.user)
        else:
            form = form_class(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.items():
                self.message_user(request, f"{field}: {' '.join(errors)}", messages.ERROR)
            return HttpResponseRedirect(back)
        data = form.cleaned_data
        try:
            if decision == "approve":
                approved = services.action_approve(
                    request_id=pk, acting_user=request.user, comment=data["comment"]
                )
                self.message_user(request, *approval_outcome(approved))
            elif decision == "reject":
                services.action_reject(
                    request_id=pk,
                    acting_user=request.user,
                    reason=data["reason"],
                    redo_instructions=data["redo_instructions"],
                )
                self.message_user(request, f"Request #{pk} rejected.", messages.SUCCESS)
            elif decision == "delegate":
                services.action_delegate(
                    request_id=pk,
                    acting_user=request.user,
                    to_user=data["to_user"],
                    until=data["until"],
                    comment=data["comment"],
                )
                self.message_user(request, f"Request #{pk} delegated to {data['to_user']}.", messages.SUCCESS)
            elif decision == "requeue":
                services.action_requeue(request_id=pk, acting_user=request.user, reason=data["reason"])
                self.message_user(request, f"Request #{pk} re-queued: it runs again once.", messages.SUCCESS)
            elif decision in ("resolve_executed", "resolve_failed"):
                outcome = decision.removeprefix("resolve_")
                services.action_resolve(
                    request_id=pk, acting_user=request.user, outcome=outcome, reason=data["reason"]
                )
                self.message_user(request, f"Request #{pk} resolved as {outcome}.", messages.SUCCESS)
            else:
                services.action_edit_payload(request_id=pk, acting_user=request.user, changes=data)
                self.message_user(request, f"Request #{pk} edited; the original is kept.", messages.SUCCESS)
        except ApprovalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(back)
        if decision in ("approve", "reject") and request.POST.get("and_next"):
            following = selectors.next_to_decide(request.user, after=obj)
            if following is None:
                self.message_user(request, "Nothing else is waiting for you.", messages.INFO)
                return HttpResponseRedirect(reverse("admin:approvals_actionrequest_changelist"))
            return HttpResponseRedirect(reverse("admin:approvals_actionrequest_change", args=[following]))
        return HttpResponseRedirect(back)

    def changelist_view(self, request, extra_context=None):
        extra = dict(extra_context or {})
        # the AE's all-day screen gets the width: the saved views and breadcrumbs lead on, and the
        # app list beside it left the columns a third of a 1366 px screen
        extra["is_nav_sidebar_enabled"] = False
        extra["agreement"] = selectors.agreement_rate()
        extra["saved_views"] = _saved_views(request)
        status = request.GET.get(StatusFilter.parameter_name) or Status.PENDING
        extra["status_shown"] = (
            "all statuses" if status == "all" else dict(Status.choices).get(status, status)
        )
        response = super().changelist_view(request, extra)
        cl = getattr(response, "context_data", {}).get("cl") if hasattr(response, "context_data") else None
        if cl is not None and cl.query and cl.result_count == 0 and status != "all":
            # a search that finds nothing under the status shown offers every status
            response.context_data["search_everywhere"] = cl.get_query_string(
                {StatusFilter.parameter_name: "all"}
            )
        return response


# The queue's saved views: (label, the filters they set). A view is "current" when the request's
# filters are exactly these (a search or page number on top keeps it current).
SAVED_VIEWS = (
    ("My queue", {"queue": "mine"}),
    ("My overdue", {"queue": "mine", "sla": "overdue"}),
    ("All overdue", {"sla": "overdue"}),
    ("All pending", {}),
    ("Outcome unknown", {"status": Status.UNKNOWN}),
    ("Failed", {"status": Status.FAILED}),
)
_VIEW_PARAMETERS = ("queue", "sla", "status", "kind__exact", "impact_level__exact")


def _saved_views(request) -> list[dict[str, object]]:
    base = reverse("admin:approvals_actionrequest_changelist")
    applied = {key: request.GET[key] for key in _VIEW_PARAMETERS if request.GET.get(key)}
    if applied.get("status") == Status.PENDING:
        applied.pop("status")  # pending is the default: the same view with or without it
    return [
        {
            "label": label,
            "url": f"{base}?{urlencode(filters)}" if filters else f"{base}?status={Status.PENDING}",
            "current": applied == filters,
        }
        for label, filters in SAVED_VIEWS
    ]


@admin.register(ApproverRule, site=tenant_site)
class ApproverRuleAdmin(admin.ModelAdmin):
    list_display = (
        "priority",
        "kind",
        "impact_level",
        "primary_role",
        "primary_approver",
        "backup_approver",
        "sla_minutes",
    )
    list_editable = ("sla_minutes",)
    list_select_related = ("primary_approver", "backup_approver")
    list_filter = ("kind", "impact_level", "primary_role")
    autocomplete_fields = ("primary_approver", "backup_approver")
    ordering = ("priority", "id")


class EscalationPolicyForm(forms.ModelForm):
    """The Slack webhook URL is a secret: written here, never rendered back (like credentials)."""

    new_slack_webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=500,
        widget=forms.PasswordInput(render_value=False),
        label="Slack webhook URL",
        help_text="Write-only: never shown back. Leave empty to keep the stored one.",
    )
    clear_slack_webhook_url = forms.BooleanField(required=False, label="Remove the Slack webhook")

    class Meta:
        model = EscalationPolicy
        fields = (
            "l2_after_minutes",
            "l3_after_minutes",
            "l4_after_minutes",
            "l2_contact",
            "l3_contact",
            "l4_contact",
            "default_deadline_hours",
        )

    def clean_new_slack_webhook_url(self) -> str:
        url = self.cleaned_data["new_slack_webhook_url"]
        if url and not url.startswith("https://"):
            raise forms.ValidationError("A Slack webhook URL is https.")
        return url

    def save(self, commit=True):
        policy = super().save(commit=False)
        if self.cleaned_data.get("new_slack_webhook_url"):
            policy.slack_webhook_url = self.cleaned_data["new_slack_webhook_url"]
        elif self.cleaned_data.get("clear_slack_webhook_url"):
            policy.slack_webhook_url = ""
        if commit:
            policy.save()
        return policy


@admin.register(EscalationPolicy, site=tenant_site)
class EscalationPolicyAdmin(SingletonModelAdmin):
    form = EscalationPolicyForm
    readonly_fields = ("slack_webhook",)
    fieldsets = (
        (
            "Delays (minutes without a decision)",
            {"fields": ("l2_after_minutes", "l3_after_minutes", "l4_after_minutes")},
        ),
        (
            "Who is told",
            {
                "fields": (
                    "l2_contact",
                    "l3_contact",
                    "l4_contact",
                    "slack_webhook",
                    "new_slack_webhook_url",
                    "clear_slack_webhook_url",
                )
            },
        ),
        ("Deadline", {"fields": ("default_deadline_hours",)}),
    )

    @admin.display(description="Slack webhook")
    def slack_webhook(self, obj: EscalationPolicy) -> str:
        return "Set (write-only)" if obj and obj.slack_webhook_url else "Not set"

    def get_fieldsets(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return self.fieldsets
        # Those who may only look see whether a webhook is set, not the fields that write it.
        hidden = {"new_slack_webhook_url", "clear_slack_webhook_url"}
        return [
            (name, {**options, "fields": tuple(f for f in options["fields"] if f not in hidden)})
            for name, options in self.fieldsets
        ]
