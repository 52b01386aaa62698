"""The tenants app's reference rows: the system tenant, which owns the operators.

The data migration ``0002_seed_system_tenant`` calls these with the historical
model, and dbinit's seeding with the current one: the domain owns its reference
rows; the infrastructure imports them, never the other way round. Every function
is idempotent by natural key (the slug) and never changes a row an operator edited.
"""

SYSTEM_TENANT_SLUG = "system"
SYSTEM_TENANT = {"slug": SYSTEM_TENANT_SLUG, "name": "System", "is_active": True}


def system_tenant_missing(Tenant, using="default") -> bool:
    """Whether the system tenant is missing (one lookup on the unique slug)."""
    return not Tenant.objects.using(using).filter(slug=SYSTEM_TENANT_SLUG).exists()


def ensure_system_tenant(Tenant, using="default") -> int:
    """Create the system tenant if missing; return how many rows were created (0 or 1)."""
    if not system_tenant_missing(Tenant, using):
        return 0
    Tenant.objects.using(using).create(**SYSTEM_TENANT)
    return 1


def remove_system_tenant(Tenant, using="default"):
    """Reverse of :func:`ensure_system_tenant` (leaves it if users still belong to it)."""
    tenant = Tenant.objects.using(using).filter(slug=SYSTEM_TENANT_SLUG).first()
    if tenant is not None and not tenant.users.exists():
        tenant.delete()
