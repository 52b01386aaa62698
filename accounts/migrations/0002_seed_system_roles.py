"""Reference data: the system roles (idempotent by slug, reversible)."""

from django.db import migrations

from accounts.reference import ensure_system_roles, remove_system_roles


def forwards(apps, schema_editor):
    ensure_system_roles(apps.get_model("accounts", "Role"), schema_editor.connection.alias)


def backwards(apps, schema_editor):
    remove_system_roles(apps.get_model("accounts", "Role"), schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("tenants", "0002_seed_system_tenant")]
    operations = [migrations.RunPython(forwards, backwards)]
