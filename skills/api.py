"""Skills API: the contracts, starting a run, and reading runs.

Starting answers 202 with the queued run, 409 with the refused run and its reason (over a budget,
a kill switch: recorded, nothing spent), 400 with per-field errors when the inputs do not fit the
schema (nothing recorded).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from mh1.api_permissions import StrictModelPermissions
from skills import registry
from skills import serializers as s
from skills.models import RunStatus, SkillRun, Trigger
from skills.services.runner import skill_run_start


class SkillRunPermission(StrictModelPermissions):
    """Reading needs view_skillrun; starting needs start_skillrun (RevOps, tenant admin)."""

    perms_map = {**StrictModelPermissions.perms_map, "POST": ["skills.start_skillrun"]}


@extend_schema(tags=["skills"])
class SkillContractsView(APIView):
    """Every loaded skill's contract."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        responses={
            200: OpenApiResponse(description="Each skill's contract (schemas, SLA, data, triggers, cost)."),
            403: OpenApiResponse(description="Your role cannot see skills."),
        }
    )
    def get(self, request):
        if not request.user.has_perm("skills.view_skillrun"):
            return Response({"code": "not_allowed", "detail": "Your role cannot see skills."}, status=403)
        return Response([skill.contract.as_dict() for skill in registry.all_skills()])


@extend_schema(tags=["skills"])
class SkillRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.SkillRunSerializer
    permission_classes = (SkillRunPermission,)
    queryset = SkillRun.objects.all()

    def get_queryset(self):
        qs = SkillRun.objects.prefetch_related("steps").order_by("-created_at", "-id")
        params = self.request.query_params
        if params.get("status") in RunStatus.values:
            qs = qs.filter(status=params["status"])
        if params.get("skill") in dict(registry.skill_choices()):
            qs = qs.filter(skill=params["skill"])
        return qs


@extend_schema(
    tags=["skills"],
    request=s.StartRunSerializer,
    responses={
        202: s.SkillRunSerializer,
        400: OpenApiResponse(description="Inputs do not fit the skill's input schema (per-field errors)."),
        403: OpenApiResponse(description="Your role cannot start runs."),
        404: OpenApiResponse(description="No such skill."),
        409: OpenApiResponse(
            description="Refused: a budget, a kill switch (the run is recorded with the reason)."
        ),
    },
)
class SkillRunStartView(APIView):
    permission_classes = (SkillRunPermission,)
    queryset = SkillRun.objects.none()  # for the permission's model

    def post(self, request, slug: str):
        body = s.StartRunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = skill_run_start(
            skill=slug,
            inputs=body.validated_data["inputs"],
            execution_mode=body.validated_data["execution_mode"],
            idempotency_key=body.validated_data["idempotency_key"],
            acting_user=request.user,
            trigger=Trigger.API,
        )
        code = status.HTTP_409_CONFLICT if run.status == RunStatus.REFUSED else status.HTTP_202_ACCEPTED
        return Response(s.SkillRunSerializer(run).data, status=code)
