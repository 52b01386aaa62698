from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("dbinit", "0001_initial")]  # so the failed run is recorded in the history table
    operations = [
        migrations.CreateModel(
            name="Widget",
            fields=[("id", models.BigAutoField(primary_key=True, serialize=False)),
                    ("name", models.CharField(max_length=50))],
        ),
    ]
