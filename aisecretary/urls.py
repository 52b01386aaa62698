from django.contrib import admin
from django.urls import path

from dbinit.health_backend import DbinitHealthView, health_checks

urlpatterns = [
    path("admin/", admin.site.urls),
    # For load balancers and Kubernetes probes: 200 when healthy, 500 otherwise; ?format=json.
    # Details only for staff or DBINIT_HEALTH_TOKEN (dbinit.access).
    path("health/", DbinitHealthView.as_view(checks=health_checks()), name="health"),
]
