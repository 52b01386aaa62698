"""Result objects: what the service layer returns and the commands render."""

from __future__ import annotations

from dataclasses import dataclass, field

from .configuration import DatabaseDescription
from .errors import DbinitError

OK, SKIPPED, FAILED, WARNING, PLANNED = "ok", "skipped", "failed", "warning", "planned"


@dataclass
class StepResult:
    """One initdb step: its status, counts, duration, summary and error."""

    name: str
    status: str = OK
    duration_ms: float = 0.0
    created: int = 0
    skipped: int = 0
    summary: str = ""
    detail: dict = field(default_factory=dict)
    error: DbinitError | None = None
    warnings: list[DbinitError] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 1),
            "created": self.created,
            "skipped": self.skipped,
            "summary": self.summary,
            "detail": self.detail,
            "error": self.error.as_dict() if self.error else None,
            "warnings": [w.as_dict() for w in self.warnings],
        }


@dataclass
class InitializationResult:
    """One initdb run: the database, its steps and how it ended."""

    database: DatabaseDescription
    environment: str
    plan_only: bool = False
    steps: list[StepResult] = field(default_factory=list)
    duration_ms: float = 0.0
    generated_password: str | None = None  # shown once by the command; never logged or stored

    @property
    def error(self) -> DbinitError | None:
        for step in self.steps:
            if step.error:
                return step.error
        return None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        if self.error:
            return FAILED
        if any(s.warnings or s.status == WARNING for s in self.steps):
            return WARNING
        return OK

    @property
    def changed(self) -> bool:
        return any(s.created for s in self.steps)

    def as_dict(self, include_password=False) -> dict:
        data = {
            "status": self.status,
            "environment": self.environment,
            "plan_only": self.plan_only,
            "database": self.database.as_dict(),
            "duration_ms": round(self.duration_ms, 1),
            "changed": self.changed,
            "steps": [s.as_dict() for s in self.steps],
            "error": self.error.as_dict() if self.error else None,
        }
        if include_password and self.generated_password:
            data["generated_admin_password"] = self.generated_password
        return data


@dataclass
class TemplateUse:
    """What a database creation did with templates (rendered in initdb's database step)."""

    source: str = ""  # the template the database was copied from; "" when it was not
    built: bool = False  # this run built that template first
    seeded: bool = False  # the template held initdb's seed (the admin and role groups) as well
    snapshot: str = ""  # ... by loading this committed snapshot instead of migrating
    ignored: list[DbinitError] = field(default_factory=list)  # I017/I018: found, not used, why
    removed: list[str] = field(default_factory=list)  # older templates removed (DBINIT_TEMPLATE_KEEP)

    @property
    def used(self) -> bool:
        return bool(self.source)

    def summary(self) -> str:
        parts = []
        if self.used:
            parts.append(("from a new template " if self.built else "from template ") + self.source
                         + (f" (loaded from snapshot {self.snapshot})" if self.snapshot else ""))
        parts += [f"{e.code} {e.message}" for e in self.ignored]
        if self.removed:
            parts.append(f"removed {len(self.removed)} older template(s) (DBINIT_TEMPLATE_KEEP)")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"template": self.source or None, "template_built": self.built, "template_seeded": self.seeded,
                "snapshot": self.snapshot or None, "templates_ignored": [e.as_dict() for e in self.ignored],
                "templates_removed": list(self.removed)}
