"""Run in a subprocess: GET /health/ through Django's test client, print status and body as JSON."""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

response = Client().get("/health/" + (sys.argv[1] if len(sys.argv) > 1 else ""),
                        HTTP_ACCEPT="application/json")
print(json.dumps({"status": response.status_code, "body": response.content.decode()}))
