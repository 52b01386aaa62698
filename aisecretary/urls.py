from django.contrib import admin
from django.urls import path

from dbinit import probes
from dbinit.health_backend import DbinitHealthView, health_checks
from dbinit.status_page import database_status

urlpatterns = [
    # Staff only (the admin's own login and permission check), linked from the admin index.
    path("admin/dbinit/status/", admin.site.admin_view(database_status), name="dbinit-status"),
    path("admin/", admin.site.urls),
    # For load balancers and Kubernetes probes: 200 when healthy, 500 otherwise; ?format=json.
    # Details only for staff or DBINIT_HEALTH_TOKEN (dbinit.access).
    path("health/", DbinitHealthView.as_view(checks=health_checks()), name="health"),
    # Kubernetes probes (see README, "Deploying"): live never touches the database.
    path("health/live/", probes.live, name="health-live"),
    path("health/ready/", probes.ready, name="health-ready"),
    path("health/startup/", probes.startup_probe, name="health-startup"),
]
