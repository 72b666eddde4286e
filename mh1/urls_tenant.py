from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from connectors import api as connectors_api
from mh1 import auth_views
from mh1.admin_sites import tenant_site
from mh1.api_root import ApiRootView
from mh1.health import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    *auth_views.urlpatterns,
    path("admin/", tenant_site.urls),
    path("api/v1/", ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include("tenants.policy.api_urls")),
    path("api/v1/approvals/", include("approvals.api_urls")),
    path("api/v1/skills/", include("skills.api_urls")),
    path("api/v1/webhooks/instantly/", connectors_api.instantly_webhook, name="webhook-instantly"),
    path("api/v1/webhooks/hubspot/", connectors_api.hubspot_webhook, name="webhook-hubspot"),
    path("api/v1/webhooks/gohighlevel/", connectors_api.gohighlevel_webhook, name="webhook-gohighlevel"),
    path("api/v1/webhooks/clay/", connectors_api.clay_results, name="webhook-clay"),
    path("u/<str:token>/", connectors_api.one_click_unsubscribe, name="unsubscribe"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
]
