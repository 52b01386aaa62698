"""factory-boy factories: how tests make tenants, roles and users."""

import factory
from factory.django import DjangoModelFactory

from accounts.models import Role, User
from tenants.models import Tenant


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    is_active = True


class RoleFactory(DjangoModelFactory):
    class Meta:
        model = Role
        django_get_or_create = ("slug",)

    slug = "member"
    name = factory.LazyAttribute(lambda o: o.slug.title())
    description = ""


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    tenant = factory.SubFactory(TenantFactory)
    role = factory.SubFactory(RoleFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("password-123")


class AdminUserFactory(UserFactory):
    tenant = factory.LazyFunction(lambda: Tenant.objects.get(slug="system"))
    role = factory.SubFactory(RoleFactory, slug="admin")
    is_staff = True
    is_superuser = True
