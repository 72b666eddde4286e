from rest_framework.routers import SimpleRouter

from approvals import api

router = SimpleRouter()
router.register("requests", api.ActionRequestViewSet, basename="api-approvals-request")

urlpatterns = router.urls
