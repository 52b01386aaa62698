"""Run in a subprocess against DATABASE_URL: a tenant with many users, made with the factories."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import django  # noqa: E402

django.setup()

from tests.factories import TenantFactory, UserFactory  # noqa: E402

count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
tenant = TenantFactory(name="Acme Corp", slug="acme")
UserFactory.create_batch(count, tenant=tenant)
print(count)
