"""Run in a subprocess against DATABASE_URL with tests.settings.thirdparty: rows in the third-party tables.

The damage tests drop tables, columns and constraints of these apps and prove that
dbrepair keeps every row, so every table they touch holds some.
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings.thirdparty")

import django  # noqa: E402

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402
from taggit.models import Tag  # noqa: E402

from tests.apps.constructs.models import Book, Note, Placement, Shelf  # noqa: E402
from tests.factories import TenantFactory, UserFactory  # noqa: E402

count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
tenant = TenantFactory(name="Acme Corp", slug="acme")
users = UserFactory.create_batch(count, tenant=tenant)
EmailAddress.objects.bulk_create(
    EmailAddress(user=u, email=u.email, verified=i % 2 == 0, primary=True) for i, u in enumerate(users))
intervals = IntervalSchedule.objects.bulk_create(
    IntervalSchedule(every=n + 1, period=IntervalSchedule.MINUTES) for n in range(3))
SolarSchedule.objects.bulk_create(SolarSchedule(event="sunrise", latitude=50 + n, longitude=10) for n in range(2))
CrontabSchedule.objects.create(minute="0", hour="4")
for n in range(5):
    PeriodicTask.objects.create(name=f"task-{n}", task="reports.send", interval=intervals[n % 3])
Tag.objects.bulk_create(Tag(name=f"tag-{n}", slug=f"tag-{n}") for n in range(5))
for n in range(2):
    Application.objects.create(name=f"app-{n}", user=users[n], client_type="confidential",
                               authorization_grant_type="authorization-code", redirect_uris="https://example.com/cb")
shelves = [Shelf.objects.create(name=f"Shelf {n}", width=10 + n, height=5) for n in range(3)]
for n in range(4):
    book = Book.objects.create(title=f"Book {n}")
    Placement.objects.create(book=book, shelf=shelves[n % 3], position=n)
    Note.objects.create(content_type_id=1, object_id=book.pk, text=f"note {n}")
print(count)
