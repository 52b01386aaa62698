from django.contrib import admin
from django.urls import path
from health_check.views import HealthCheckView

from dbinit.health_backend import health_checks

urlpatterns = [
    path("admin/", admin.site.urls),
    # For load balancers and Kubernetes probes: 200 when healthy, 500 otherwise; ?format=json.
    path("health/", HealthCheckView.as_view(checks=health_checks()), name="health"),
]
