"""Run in a subprocess: what one anonymous GET /health/ does once the process is warm.

Starts as a WSGI worker does (``aisecretary.wsgi``, so ``DBINIT_STARTUP`` runs), sends two
requests to warm up, then records during a third: every SQL statement (Django's
``CaptureQueriesContext``) and every file the Python code opens or lists (``sys.addaudithook``:
the interpreter's own ``open``, ``os.scandir`` and ``os.listdir`` events). Prints them as JSON with
the status code and the body.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

import aisecretary.wsgi  # noqa: E402,F401 - start-up as in a worker

client = Client()
for _ in range(2):
    client.get("/health/", HTTP_ACCEPT="application/json")

recording = False
files = []


def audit(event, args):
    if recording and event in ("open", "os.scandir", "os.listdir"):
        files.append(f"{event} {args[0]}")


sys.addaudithook(audit)
connection = connections["default"]
connection.ensure_connection()  # the capture starts on an open connection; the request closes it
with CaptureQueriesContext(connection) as queries:
    recording = True
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    recording = False
print(json.dumps({"status": response.status_code, "body": response.content.decode(),
                  "queries": [" ".join(q["sql"].split()) for q in queries.captured_queries], "files": files}))
