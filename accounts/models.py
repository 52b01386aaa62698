from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from tenants.models import Tenant
from tenants.reference import SYSTEM_TENANT_SLUG

from .reference import ADMIN_ROLE, MEMBER_ROLE


class Role(models.Model):
    """A system role, identified by its slug."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name

    def natural_key(self):
        return (self.slug,)


def normalize_email(email: str) -> str:
    """Email is the login and is case-insensitive: store it lower-cased and trimmed."""
    return (email or "").strip().lower()


class UserQuerySet(models.QuerySet):
    def with_email(self, email):
        """Users whose email matches ``email`` whatever its case.

        Compares LOWER(email), the expression of the unique index accounts_user_email_ci_unique,
        so the lookup is one index probe (``email__iexact`` compiles to UPPER() on PostgreSQL
        and would scan every user).
        """
        return self.alias(email_ci=Lower("email")).filter(email_ci=normalize_email(email))


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def get_by_natural_key(self, email):
        return self.with_email(email).get()

    def _defaults(self, extra_fields, role_slug):
        db = self._db or "default"
        if extra_fields.get("tenant") is None and extra_fields.get("tenant_id") is None:
            extra_fields["tenant"] = Tenant.objects.using(db).get(slug=SYSTEM_TENANT_SLUG)
        if extra_fields.get("role") is None and extra_fields.get("role_id") is None:
            extra_fields["role"] = Role.objects.using(db).get(slug=role_slug)
        return extra_fields

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **self._defaults(extra_fields, MEMBER_ROLE))

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if extra_fields.get("is_staff") is not True:
            raise ValueError("Superuser must have is_staff=True.")
        if extra_fields.get("is_superuser") is not True:
            raise ValueError("Superuser must have is_superuser=True.")
        return self._create_user(email, password, **self._defaults(extra_fields, ADMIN_ROLE))


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address; belongs to one tenant and has one role."""

    email = models.EmailField("email address", max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="users")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="users")
    is_staff = models.BooleanField(
        default=False, help_text="Designates whether the user can log into the admin site."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]
        indexes = [
            # Small partial index: "is there an active admin?" stays one index probe with a million users.
            models.Index(fields=["is_active"], condition=models.Q(is_superuser=True, is_staff=True),
                         name="accounts_user_admins_idx"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self):
        return self.first_name or self.email
