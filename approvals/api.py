"""Approval queue API: list, read, propose, and decide on action requests.

Thin views: a serializer checks the input's shape, a service does the work and enforces the
rules (four eyes, the kind's scope, legal transitions), and its ApprovalError becomes a JSON
error with its code (mh1.api_errors). The queryset is the tenant schema's own table, so another
tenant's id is simply not found.
"""

from __future__ import annotations

from auditlog.context import set_actor
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals import selectors, services
from approvals import serializers as s
from approvals.models import ActionRequest, Approval, Event
from mh1.api_permissions import StrictModelPermissions

VIEW = "%(app_label)s.view_%(model_name)s"


class ApprovalQueuePermission(StrictModelPermissions):
    """Every method needs the view permission; nobody holds add/change on requests.

    Proposing needs the proposer permission too (what is proposed still waits for an approver;
    the service checks it again). Who may decide is not a model permission: the services check
    the kind's scope, four eyes and delegation, and answer NotAllowed (403) with a reason.
    """

    perms_map = {**StrictModelPermissions.perms_map, "POST": [VIEW]}

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if getattr(view, "action", None) == "create":
            return request.user.has_perm(services.PROPOSE_PERMISSION)
        return True


ERRORS = {
    400: OpenApiResponse(description="Invalid input, unknown kind or payload not matching its schema."),
    403: OpenApiResponse(description="Not allowed: missing scope, own request, or already approved."),
    404: OpenApiResponse(description="No such request in this tenant."),
    409: OpenApiResponse(description="The request is not in a state that allows this."),
}


@extend_schema(tags=["approvals"])
@extend_schema_view(
    list=extend_schema(
        summary="The approval queue, by deadline",
        parameters=[s.QueueFilterSerializer],
        responses=s.ActionRequestSerializer,
    ),
    retrieve=extend_schema(
        summary="One request with its timeline and approvals",
        responses={200: s.ActionRequestDetailSerializer, 404: ERRORS[404]},
    ),
)
class ActionRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = ActionRequest.objects.all()
    permission_classes = [ApprovalQueuePermission]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[ActionRequest]:
        queryset = ActionRequest.objects.select_related("assigned_to", "requested_by").order_by(
            "deadline", "id"
        )
        if self.action != "list":
            queryset = queryset.prefetch_related(
                Prefetch("events", queryset=Event.objects.order_by("created_at", "id")),
                Prefetch("approvals", queryset=Approval.objects.select_related("approver").order_by("id")),
            )
        return queryset

    def filter_queryset(self, queryset: QuerySet[ActionRequest]) -> QuerySet[ActionRequest]:
        # Only the list filters: a detail URL finds its request whatever the query string says.
        if self.action != "list":
            return queryset
        params = s.QueueFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        if filters["mine"]:
            queryset = queryset & selectors.queue_for(self.request.user)
        if filters["overdue"]:
            queryset = queryset & selectors.overdue()
        for field in ("status", "kind", "impact_level"):
            if field in filters:
                queryset = queryset.filter(**{field: filters[field]})
        return queryset

    def get_serializer_class(self):
        if self.action == "list":
            return s.ActionRequestSerializer
        return s.ActionRequestDetailSerializer

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _detail(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        # Re-read with the detail prefetches so the answer shows the new events.
        request = self.get_queryset().get(pk=pk)
        return Response(s.ActionRequestDetailSerializer(request).data, status=code)

    @extend_schema(
        summary="Propose an action (idempotent by key)",
        description=(
            "Needs approvals.propose_action (tenant admin, RevOps, AE; not viewers). "
            "evaluation_score and release_decision are refused (400): only a skill run's evaluation "
            "sets them. The rollout phase decides what "
            "happens next (shadow: recorded as shadowed). A repeated idempotency key answers 200 "
            "with the request first proposed under it, unchanged."
        ),
        request=s.ProposeSerializer,
        responses={
            201: s.ActionRequestDetailSerializer,
            200: OpenApiResponse(s.ActionRequestDetailSerializer, description="Key seen before."),
            400: ERRORS[400],
            403: OpenApiResponse(description="Your role cannot propose."),
        },
    )
    def create(self, request, *args, **kwargs):
        data = self._input(s.ProposeSerializer)
        # Only tells 201 from 200; the service itself returns the winner of a concurrent race.
        seen = ActionRequest.objects.filter(idempotency_key=data["idempotency_key"]).exists()
        with set_actor(request.user):
            proposed = services.action_propose(
                kind=data["kind"],
                payload=data["payload"],
                idempotency_key=data["idempotency_key"],
                requested_by=request.user,
                execution_mode=data["execution_mode"],
            )
        return self._detail(proposed.pk, status.HTTP_200_OK if seen else status.HTTP_201_CREATED)

    @extend_schema(
        summary="Approve (critical requests need two different approvers)",
        request=s.ApproveSerializer,
        responses={200: s.ActionRequestDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        obj = self.get_object()
        data = self._input(s.ApproveSerializer)
        with set_actor(request.user):
            services.action_approve(request_id=obj.pk, acting_user=request.user, comment=data["comment"])
        return self._detail(obj.pk)

    @extend_schema(
        summary="Reject with a reason",
        request=s.RejectSerializer,
        responses={200: s.ActionRequestDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        obj = self.get_object()
        data = self._input(s.RejectSerializer)
        with set_actor(request.user):
            services.action_reject(
                request_id=obj.pk,
                acting_user=request.user,
                reason=data["reason"],
                redo_instructions=data["redo_instructions"],
            )
        return self._detail(obj.pk)

    @extend_schema(
        summary="Hand the request to a colleague, optionally until a time",
        request=s.DelegateSerializer,
        responses={200: s.ActionRequestDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def delegate(self, request, pk=None):
        obj = self.get_object()
        services.delegation_check_actor(request.user, obj)  # 403 before any word on the colleague
        serializer = s.DelegateSerializer(
            data=request.data, context={"action_request": obj, "acting_user": request.user}
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with set_actor(request.user):
            services.action_delegate(
                request_id=obj.pk,
                acting_user=request.user,
                to_user=data["to_user"],
                until=data["until"],
                comment=data["comment"],
            )
        return self._detail(obj.pk)

    @extend_schema(
        summary="Who this request can be delegated to",
        description="Colleagues whose role may approve the request's kind, minus you and the requester.",
        responses={200: s.DelegateCandidateSerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def delegates(self, request, pk=None):
        obj = self.get_object()
        services.delegation_check_actor(request.user, obj)
        candidates = selectors.delegate_candidates([obj.kind], exclude=[request.user, obj.requested_by])
        return Response(s.DelegateCandidateSerializer(candidates, many=True).data)

    @extend_schema(
        summary="Edit the payload's editable fields (the original is kept)",
        request=s.EditPayloadSerializer,
        responses={200: s.ActionRequestDetailSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def edit(self, request, pk=None):
        obj = self.get_object()
        data = self._input(s.EditPayloadSerializer)
        with set_actor(request.user):
            services.action_edit_payload(request_id=obj.pk, acting_user=request.user, changes=data["changes"])
        return self._detail(obj.pk)
