"""The seeded admin logs into the Django admin (a real POST of the login form)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def login(client, email, password):
    page = client.get("/admin/login/")
    assert page.status_code == 200
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password})


def test_seeded_admin_logs_into_the_admin(client):
    call_command("initdb", "--noinput", verbosity=0)
    response = login(client, "admin@ai-secretary.com", "admin123")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"Tenants" in index.content and b"Users" in index.content


def test_login_email_is_case_insensitive(client):
    call_command("initdb", "--noinput", verbosity=0)
    response = login(client, "Admin@AI-Secretary.com", "admin123")
    assert response.status_code == 302


def test_wrong_password_does_not_log_in(client):
    call_command("initdb", "--noinput", verbosity=0)
    response = login(client, "admin@ai-secretary.com", "wrong")
    assert response.status_code == 200
    assert b"Please enter the correct email address and password" in response.content
    assert client.get("/admin/").status_code == 302


def test_admin_lists_show_tenants_and_users(client):
    call_command("initdb", "--noinput", verbosity=0)
    tenant = TenantFactory(name="Acme Corp")
    UserFactory.create_batch(3, tenant=tenant)
    login(client, "admin@ai-secretary.com", "admin123")
    tenants = client.get("/admin/tenants/tenant/")
    assert b"Acme Corp" in tenants.content and b"System" in tenants.content
    users = client.get("/admin/accounts/user/?q=example.com")
    assert users.status_code == 200
    assert users.content.count(b"@example.com") >= 3


def test_email_is_unique_whatever_its_case():
    from django.db import IntegrityError

    call_command("initdb", "--noinput", verbosity=0)
    UserFactory(email="Someone@Example.com")
    assert get_user_model().objects.get_by_natural_key("SOMEONE@example.com").email == "someone@example.com"
    # bulk_create skips save(), which lower-cases: the stored email keeps its case, so the plain
    # unique index on email cannot catch it; only the constraint on Lower(email) can.
    first = get_user_model().objects.get(email="someone@example.com")
    user = get_user_model()(email="someone@EXAMPLE.com", tenant=first.tenant, role=first.role)
    with pytest.raises(IntegrityError, match="accounts_user_email_ci_unique"):
        with transaction.atomic():
            get_user_model().objects.bulk_create([user])
    # The same row with another address goes in as typed: bulk_create really keeps the case.
    user.email = "other@EXAMPLE.com"
    get_user_model().objects.bulk_create([user])
    assert get_user_model().objects.filter(email="other@EXAMPLE.com").count() == 1
