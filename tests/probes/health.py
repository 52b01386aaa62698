"""Run in a subprocess: GET /health/ through Django's test client, print status and body as JSON.

``HEALTH_PROBE_TOKEN`` in the environment is sent as ``Authorization: Bearer TOKEN``;
``HEALTH_PROBE_ACCEPT`` replaces the JSON Accept header; ``HEALTH_PROBE_LOGIN=EMAIL`` logs that
user in first.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

headers = {"HTTP_ACCEPT": os.environ.get("HEALTH_PROBE_ACCEPT", "application/json")}
if os.environ.get("HEALTH_PROBE_TOKEN"):
    headers["HTTP_AUTHORIZATION"] = f"Bearer {os.environ['HEALTH_PROBE_TOKEN']}"
client = Client()
if os.environ.get("HEALTH_PROBE_LOGIN"):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.with_email(os.environ["HEALTH_PROBE_LOGIN"]).get())
response = client.get("/health/" + (sys.argv[1] if len(sys.argv) > 1 else ""), **headers)
print(json.dumps({"status": response.status_code, "body": response.content.decode()}))
