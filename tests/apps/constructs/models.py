# ruff: noqa: DJ008 -- test-only models, never displayed
"""A test-only app using the constructs a schema check must not misjudge (tests.settings.thirdparty).

GeneratedField, db_default, database comments, a db_table override, an unmanaged and a
proxy model, an explicit M2M through model, a generic relation, functional and partial
indexes, a deferrable unique constraint (PostgreSQL only: SQLite gets none) and check
constraints with conditions.
"""

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower, Now


class Shelf(models.Model):
    name = models.CharField(max_length=50, db_comment="What the shelf is called")
    created = models.DateTimeField(db_default=Now())
    width = models.PositiveIntegerField(default=10)
    height = models.PositiveIntegerField(default=5)
    area = models.GeneratedField(expression=F("width") * F("height"), output_field=models.BigIntegerField(),
                                 db_persist=True)

    class Meta:
        db_table = "constructs_custom_shelf"
        db_table_comment = "Shelves (a db_table override with a comment)"
        indexes = [models.Index(Lower("name"), name="constructs_shelf_lower_name"),
                   models.Index(fields=["width"], condition=Q(width__gt=20), name="constructs_shelf_wide")]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="constructs_shelf_name_ci"),
            models.CheckConstraint(condition=Q(height__lte=F("width") * 10), name="constructs_shelf_ratio"),
            models.UniqueConstraint(fields=["width", "height"], name="constructs_shelf_size_deferred",
                                    deferrable=models.Deferrable.DEFERRED),
        ]


class Book(models.Model):
    title = models.CharField(max_length=100)
    isbn = models.CharField(max_length=13, db_default="")  # added by 0002, with a database default
    shelves = models.ManyToManyField(Shelf, through="Placement", related_name="books")


class Placement(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE)
    shelf = models.ForeignKey(Shelf, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField()

    class Meta:
        unique_together = [("shelf", "position")]


class Note(models.Model):
    """A generic relation to any row."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    text = models.TextField(blank=True, default="")  # NOT NULL since 0002 (AlterField nullability)


class BookProxy(Book):
    class Meta:
        proxy = True


class LegacyReport(models.Model):
    """A table no migration creates (a view or another system's table)."""

    label = models.CharField(max_length=20)

    class Meta:
        managed = False
        db_table = "legacy_report_view"
