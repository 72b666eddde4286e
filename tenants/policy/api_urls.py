from django.urls import path

from tenants.policy import api

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api-me"),
    path("policy/rollout/", api.RolloutSettingsView.as_view(), name="api-policy-rollout"),
    path("policy/icp/", api.IcpDefinitionView.as_view(), name="api-policy-icp"),
    path("policy/quotas/", api.QuotaPolicyView.as_view(), name="api-policy-quotas"),
    path("policy/sending/", api.SendingPolicyView.as_view(), name="api-policy-sending"),
    path("heartbeats/", api.HeartbeatListView.as_view(), name="api-heartbeats"),
]
