import os

from django.db import migrations, models


def load_gadgets(apps, schema_editor):
    Gadget = apps.get_model("brokenapp", "Gadget")
    Gadget.objects.using(schema_editor.connection.alias).create(name="first")
    if os.environ.get("BROKENAPP_FIXED") != "1":
        # A real database error after the table was created: the whole migration must roll back.
        Gadget.objects.using(schema_editor.connection.alias).create(name="x" * 10, id=1)


class Migration(migrations.Migration):
    dependencies = [("brokenapp", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="Gadget",
            fields=[("id", models.BigAutoField(primary_key=True, serialize=False)),
                    ("name", models.CharField(max_length=50))],
        ),
        migrations.RunPython(load_gadgets, migrations.RunPython.noop),
    ]
