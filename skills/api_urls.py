from django.urls import path
from rest_framework.routers import SimpleRouter

from skills import api

router = SimpleRouter()
router.register("runs", api.SkillRunViewSet, basename="api-skills-run")

urlpatterns = [
    path("", api.SkillContractsView.as_view(), name="api-skills"),
    path("<slug:slug>/runs/", api.SkillRunStartView.as_view(), name="api-skills-start"),
    *router.urls,
]
