"""Tenant policy API: read and patch each policy, list heartbeats, who am I."""

from __future__ import annotations

from auditlog.context import set_actor
from django.db import connection, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.policy import serializers as s
from tenants.policy import services as policy_services
from tenants.policy.models import Heartbeat, IcpDefinition, QuotaPolicy, RolloutSettings, SendingPolicy
from tenants.services import user_role


class SingletonPolicyView(generics.RetrieveUpdateAPIView):
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        obj = self.queryset.model.get_solo()
        self.check_object_permissions(self.request, obj)
        return obj

    def perform_update(self, serializer):
        with transaction.atomic(), set_actor(self.request.user):
            serializer.save()


class RolloutSettingsView(SingletonPolicyView):
    queryset = RolloutSettings.objects.all()
    serializer_class = s.RolloutSettingsSerializer

    def perform_update(self, serializer):
        serializer.instance = policy_services.rollout_update(
            acting_user=self.request.user, **serializer.validated_data
        )


class IcpDefinitionView(SingletonPolicyView):
    queryset = IcpDefinition.objects.all()
    serializer_class = s.IcpDefinitionSerializer

    def perform_update(self, serializer):
        # the service, as the admin form: every lead is re-scored once the new ICP commits
        serializer.instance = policy_services.policy_update(
            acting_user=self.request.user, policy=IcpDefinition, **serializer.validated_data
        )


class QuotaPolicyView(SingletonPolicyView):
    queryset = QuotaPolicy.objects.all()
    serializer_class = s.QuotaPolicySerializer


class SendingPolicyView(SingletonPolicyView):
    queryset = SendingPolicy.objects.all()
    serializer_class = s.SendingPolicySerializer


class HeartbeatListView(generics.ListAPIView):
    queryset = Heartbeat.objects.order_by("-ran_at")
    serializer_class = s.HeartbeatSerializer


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.CharField(allow_null=True)
    tenant = serializers.CharField()


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        role = user_role(request.user)
        return Response(
            {
                "username": request.user.username,
                "email": request.user.email,
                "role": role.value if role else None,
                "tenant": connection.schema_name,
            }
        )
