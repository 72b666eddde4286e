from django.urls import path
from django.views.generic import RedirectView

from mh1 import auth_views
from mh1.admin_sites import public_site
from mh1.health import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    *auth_views.urlpatterns,
    path("admin/", public_site.urls),
]
