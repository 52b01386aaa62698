"""Run in a subprocess: GET (or --method) a path through Django's test client, print status and body as JSON.

``--staff EMAIL``: logged in as that (staff) user first, to see what staff see.
"""

import argparse
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("path")
parser.add_argument("--staff")
parser.add_argument("--method", default="get", choices=["get", "head", "post"])
args = parser.parse_args()
client = Client()
if args.staff:
    client.force_login(get_user_model().objects.get(email__iexact=args.staff))
response = getattr(client, args.method)(args.path, HTTP_ACCEPT="application/json")
print(json.dumps({"status": response.status_code, "body": response.content.decode()}))
