"""Reference data: the system tenant (idempotent by slug, reversible)."""

from django.db import migrations

from tenants.reference import ensure_system_tenant, remove_system_tenant


def forwards(apps, schema_editor):
    ensure_system_tenant(apps.get_model("tenants", "Tenant"), schema_editor.connection.alias)


def backwards(apps, schema_editor):
    remove_system_tenant(apps.get_model("tenants", "Tenant"), schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
