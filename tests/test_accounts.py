"""The custom user model and Django's own createsuperuser."""

import pytest

from tests.support.databases import manage


def test_createsuperuser_noinput_puts_the_user_in_the_system_tenant(initialized_db):
    proc = manage("createsuperuser", "--noinput", "--email", "ops@example.com", db=initialized_db,
                  env={"DJANGO_SUPERUSER_PASSWORD": "a-Long-passw0rd"})
    assert proc.returncode == 0, proc.stderr
    row = initialized_db.query(
        "SELECT t.slug, r.slug, u.is_staff, u.is_superuser FROM accounts_user u "
        "JOIN tenants_tenant t ON t.id = u.tenant_id JOIN accounts_role r ON r.id = u.role_id "
        "WHERE u.email = 'ops@example.com'")
    assert [(a, b, bool(c), bool(d)) for a, b, c, d in row] == [("system", "admin", True, True)]


@pytest.mark.django_db
def test_create_user_defaults_to_member_of_the_system_tenant():
    from accounts.models import User

    user = User.objects.create_user("Person@Example.COM", "pw-123456")
    assert user.email == "person@example.com"
    assert (user.tenant.slug, user.role.slug, user.is_staff) == ("system", "member", False)
    assert user.check_password("pw-123456")


@pytest.mark.django_db
def test_factories_build_users_in_their_own_tenant():
    from tests.factories import UserFactory

    user = UserFactory()
    assert user.tenant.slug.startswith("tenant-")
    assert user.role.slug == "member"
    assert user.check_password("password-123")
