"""The catalogue of every problem dbinit can report, and the one exception type.

Each entry has a stable id in Django's check-id form (``dbinit.E010``): the
letter is the level (C critical, E error, W warning, I info). The same id is
used by ``initdb``, ``dbhealth``, ``dbrepair``, ``resetdb``, the Django system
checks, the start-up hook and ``/health/``, so a code seen anywhere means one
thing. ``docs/error-codes.md`` is generated from this module
(``python manage.py dbinit_docs``); a test fails when the two disagree.

Each entry is a module constant named by its id (``errors.E030``), so code and
tests refer to names, not string literals. An entry that ``dbrepair`` can fix
names its repair action (``repair="recreate_tables"``); ``dbinit.repair``
registers the action under that name, so the catalogue is the one list of
repair kinds. Informational results (``I0xx``) take their text from here too.

To add an error: write the entry below (the next free id of its level and
area), raise ``DbinitError(errors.E0xx, **context)`` or return it from a check,
and run ``make docs``.

This module is pure Python: settings import it before Django is set up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LEVELS = {"C": "critical", "E": "error", "W": "warning", "I": "info"}


@dataclass(frozen=True)
class Entry:
    """One catalogued problem (or informational result): its id, text and fix."""

    id: str
    title: str
    message: str
    resolution: tuple[str, ...]
    repair: str | None = None  # the dbrepair action that fixes it (see dbinit.repair)

    @property
    def level(self) -> str:
        return LEVELS[self.id.split(".")[1][0]]

    @property
    def fixable(self) -> bool:
        return self.repair is not None

    def format(self, **context) -> str:
        """The message with ``context`` filled in."""
        return _format(self.message, context)


def _e(id, title, message, *resolution, repair=None):
    return Entry(f"dbinit.{id}", title, message, tuple(resolution), repair)


# --- configuration -------------------------------------------------
E001 = _e("E001", "Unknown environment",
   "AISECRETARY_ENV is {value!r}; allowed values are development, production, testing.",
   "Set AISECRETARY_ENV to development, production or testing (or unset it for development).")
E002 = _e("E002", "Malformed DATABASE_URL",
   "DATABASE_URL {url} cannot be used: {reason}.",
   "Fix DATABASE_URL; examples: sqlite:////absolute/path/db.sqlite3 or "
   "postgres://USER:PASSWORD@HOST:5432/NAME.")
E003 = _e("E003", "Unsupported database engine",
   "The database engine {engine!r} is not supported by dbinit.",
   "Use an sqlite:// or postgres:// DATABASE_URL (engines django.db.backends.sqlite3 or "
   "django.db.backends.postgresql).")
E004 = _e("E004", "Required setting missing in production",
   "{setting} must be set when AISECRETARY_ENV=production.",
   "Export {setting} in the server's environment (see README, 'Environment variables').")
E005 = _e("E005", "Invalid setting value",
   "{setting} is {value!r}; {expected}.",
   "Set {setting} to one of the values above, or unset it to use the default.")
E006 = _e("E006", "Well-known admin password in production",
   "The admin password (DBINIT_ADMIN_PASSWORD or typed at initdb's prompt) is the well-known "
   "development password; production refuses it.",
   "Use a strong secret, or leave DBINIT_ADMIN_PASSWORD unset and the prompt empty so that "
   "initdb generates one (written to a private file).")
E007 = _e("E007", "DEBUG is on in production",
   "DEBUG is on while AISECRETARY_ENV=production.",
   "Remove the DEBUG override from the production settings.")
E008 = _e("E008", "Unknown database alias",
   "There is no database {alias!r} in DATABASES.",
   "Pass --database with one of: {aliases}.")
E009 = _e("E009", "Database not created yet",
   "The database {name} does not exist yet.",
   "Run python manage.py initdb: it creates the database, migrates and seeds it.")
W009 = _e("W009", "SQLite file not created yet",
   "The SQLite database {name} does not exist yet; initdb or migrate will create it.",
   "Run python manage.py initdb.")
# --- reaching the database ------------------------------------------
E010 = _e("E010", "Database server unreachable",
   "Could not connect to {target} within {timeout}s: {reason}.",
   "Check that the server is running and listening (pg_isready -h HOST -p PORT), that "
   "HOST and PORT in DATABASE_URL are right, or raise DBINIT_CONNECT_TIMEOUT if it is "
   "still starting.")
E011 = _e("E011", "Authentication refused",
   "The server at {target} refused the credentials of role {user!r}: {reason}.",
   "Check the user and password in DATABASE_URL; create the role if it does not exist "
   "(CREATE ROLE name LOGIN PASSWORD '...').")
E012 = _e("E012", "Host name cannot be resolved",
   "The database host {host!r} cannot be resolved.",
   "Fix HOST in DATABASE_URL, or check DNS / the container network.")
E013 = _e("E013", "Database missing and cannot be created",
   "The database {name!r} does not exist and could not be created: {reason}.",
   "Create it as a privileged role (createdb -h HOST -U ADMIN {name}) or grant CREATEDB "
   "to the role in DATABASE_URL, then run: python manage.py initdb.")
E014 = _e("E014", "Database locked",
   "The database {target} stayed locked by another process for {timeout}s.",
   "Find and stop the process holding the lock (fuser DBFILE), or raise "
   "DBINIT_CONNECT_TIMEOUT, then run the command again.")
E015 = _e("E015", "Not an SQLite database",
   "{path} exists but is not an SQLite database (or is corrupt); it was left untouched.",
   "Point DATABASE_URL at another file, or move this one away and restore a backup from "
   "DBINIT_BACKUP_DIR (cp BACKUP {path}); dbinit never overwrites it.")
E016 = _e("E016", "SQLite path cannot be created",
   "The folder for {path} cannot be created or written: {reason}.",
   "Create the folder and make it writable by this user, or point DATABASE_URL elsewhere.")
E017 = _e("E017", "Database server version not supported",
   "{vendor} {version} is older than the {minimum} that Django 5.2 supports.",
   "Upgrade the database server to {vendor} {minimum} or newer.")
E018 = _e("E018", "Connection options rejected",
   "The driver rejected the connection options: {reason}.",
   "Fix the query-string options of DATABASE_URL (for example sslmode=require).")
E019 = _e("E019", "Database error",
   "The database reported an error during {during}: {reason}.",
   "Run python manage.py dbhealth for a diagnosis; the message above is the server's.")
# --- migrations ------------------------------------------------------
E020 = _e("E020", "Migration failed",
   "Migration {migration} failed and was rolled back: {reason}.",
   "Fix the migration or the data it trips on, then run python manage.py initdb again; "
   "it carries on from {migration}.")
E021 = _e("E021", "Inconsistent migration history",
   "Migration history is inconsistent: {reason}.",
   "Record the missing dependency (python manage.py dbrepair) or restore the "
   "django_migrations table from a backup.", repair="record_lost_migrations")
W020 = _e("W020", "Migrations pending",
   "{count} migration(s) not applied yet: {migrations}.",
   "Run python manage.py initdb (or python manage.py migrate).", repair="apply_migrations")
W021 = _e("W021", "Applied migration missing on disk",
   "Migration(s) recorded as applied but not found on disk: {migrations}.",
   "Restore the migration files, or remove the records with "
   "python manage.py dbrepair --prune.", repair="prune_records")
W022 = _e("W022", "Model changes without a migration",
   "Models have changes that are not in a migration: {changes}.",
   "Run python manage.py makemigrations, review and commit the new files, then "
   "python manage.py initdb.")
W023 = _e("W023", "Migration edited after it was applied",
   "Migration file(s) changed since they were applied: {migrations}.",
   "Restore the file from version control (git checkout -- FILE); to change an applied "
   "schema, add a new migration instead of editing an old one.")
W024 = _e("W024", "Migration records lost",
   "The database already holds the schema of {count} migration(s) that are not recorded as "
   "applied: {migrations}.",
   "Run python manage.py dbrepair: it records them without running them again (each was "
   "verified against the schema, operation by operation).", repair="record_lost_migrations")
W029 = _e("W029", "Lost records that cannot be verified",
   "Migration(s) {migrations} are not recorded, although the database holds what later ones "
   "did; their effect (RunPython / RunSQL) cannot be seen in the schema.",
   "Check that their code ran (the rows it writes are there), then record them without running "
   "them: {command} (dbinit's migrate --fake APP NAME: it records exactly these, also under an "
   "inconsistent history, then repairs what waited for them).")
E032 = _e("E032", "Migrations partly applied",
   "Migration(s) {migrations} are not recorded and the database holds only part of their effect: "
   "{detail}.",
   "Nothing was recorded or applied. Restore the missing objects from a backup, or create them as "
   "the migration would (python manage.py sqlmigrate APP NAME prints its SQL), or drop the "
   "objects that are there too early; then run python manage.py dbrepair.")
E033 = _e("E033", "Pending migrations already in the database",
   "{count} pending migration(s) are already in the database, wholly or in part: {migrations}; "
   "applying them would fail (already exists) or run their code twice.",
   "Run python manage.py dbhealth to see each one, then python manage.py dbrepair: it records "
   "the verified ones without running them and names what is missing in the others.")
E035 = _e("E035", "Not a pending migration",
   "{migration} is not a pending migration of this project (it is recorded already, or no file has that name).",
   "List the migrations with python manage.py showmigrations {app} and pass --record APP.NAME "
   "with one marked [ ].")
# --- schema ----------------------------------------------------------
E030 = _e("E030", "Table missing",
   "Table(s) of applied migrations missing: {tables}.",
   "Run python manage.py dbrepair to recreate them from the migration state, or restore "
   "them from a backup.", repair="recreate_tables")
E031 = _e("E031", "Column missing",
   "Column(s) of applied migrations missing: {columns}.",
   "Run python manage.py dbrepair to add them back from the migration state, or restore "
   "them from a backup.", repair="recreate_columns")
E034 = _e("E034", "NOT NULL column cannot be re-added",
   "{column} is NOT NULL, the migration state gives it no default, and its table holds rows: "
   "dbrepair does not invent values.",
   "Restore the column from a backup, or add it as the migration would but nullable, fill every "
   "row with the right value, then make it NOT NULL (PostgreSQL: ALTER TABLE {table} ALTER "
   "COLUMN {name} SET NOT NULL; SQLite: rebuild the table); then run python manage.py dbhealth.")
W025 = _e("W025", "Column nullability differs",
   "Column(s) whose NULL / NOT NULL differs from the applied migrations: {columns}.",
   "Run python manage.py dbrepair: it drops NOT NULL where the state allows NULL, and sets it "
   "where no row holds NULL (a column with NULL rows is left to you, dbinit.E036).",
   repair="repair_nullability")
E036 = _e("E036", "NOT NULL cannot be set over NULL rows",
   "{column} is NOT NULL in the applied migrations, but {count} row(s) of {table} hold NULL there: "
   "dbrepair does not invent values.",
   "Give those rows their right value (SELECT * FROM {table} WHERE {name} IS NULL shows them; "
   "UPDATE {table} SET {name} = ... WHERE {name} IS NULL), or restore them from a backup; then "
   "run python manage.py dbrepair, which sets NOT NULL (PostgreSQL: ALTER TABLE {table} ALTER "
   "COLUMN {name} SET NOT NULL; SQLite: a table rebuild).")
W026 = _e("W026", "Index missing",
   "Index(es) of applied migrations missing: {indexes}.",
   "Run python manage.py dbrepair to recreate them from the migration state.",
   repair="recreate_constraints")
W027 = _e("W027", "Unique or check constraint missing",
   "Constraint(s) of applied migrations missing: {constraints}.",
   "Run python manage.py dbrepair to recreate them from the migration state; rows that violate "
   "one make that one fail alone, and the report lists them.", repair="recreate_constraints")
W028 = _e("W028", "Foreign key missing",
   "Foreign key(s) of applied migrations missing: {foreign_keys}.",
   "Run python manage.py dbrepair to recreate them from the migration state; rows pointing at "
   "missing rows make that one fail alone, and the report says so.", repair="recreate_constraints")
# --- seed data -------------------------------------------------------
E040 = _e("E040", "System tenant missing",
   "The system tenant (slug 'system') does not exist.",
   "Run python manage.py dbrepair (or python manage.py initdb).", repair="reseed")
E041 = _e("E041", "System roles missing",
   "System role(s) missing: {roles}.",
   "Run python manage.py dbrepair (or python manage.py initdb).", repair="reseed")
E042 = _e("E042", "Seeding failed",
   "Seeding {what} failed: {reason}.",
   "Run python manage.py dbhealth to see what is missing, fix it, then "
   "python manage.py initdb.")
W040 = _e("W040", "No active staff admin",
   "No active staff superuser exists, so nobody can log into the admin.",
   "Run python manage.py initdb (seeds DBINIT_ADMIN_EMAIL) or "
   "python manage.py createsuperuser.", repair="reseed")
W042 = _e("W042", "Optional seed data not seeded",
   "Optional seed data {what} could not be seeded: {reason}.",
   "Run python manage.py dbrepair, or python manage.py initdb after fixing the cause.")
W043 = _e("W043", "Role group lost its permissions",
   "Role group(s) hold none of their role's permissions: {groups}.",
   "Run python manage.py dbrepair: it gives each such group its role's permissions again "
   "(a group an operator changed in any other way is left alone).", repair="reseed")
# --- engine specifics --------------------------------------------------
E050 = _e("E050", "SQLite integrity check failed",
   "PRAGMA quick_check on {path} reported: {reason}.",
   "Stop the servers, move the file away and restore the newest backup from "
   "DBINIT_BACKUP_DIR; dbrepair never writes to a corrupt file.")
E051 = _e("E051", "SQLite file not writable",
   "{path} (or its folder) is not writable by this user.",
   "Fix the permissions (chown/chmod) of the file and its folder.")
W050 = _e("W050", "Database encoding is not UTF-8",
   "The database encoding is {encoding}; text outside it cannot be stored.",
   "Recreate the database with ENCODING 'UTF8' (python manage.py resetdb after a backup).")
W051 = _e("W051", "Slow database round trip",
   "A round trip to the database took {ms} ms.",
   "Check the network path to the database server and its load.")
# --- SQLite in production (issue 14) -----------------------------------
W052 = _e("W052", "SQLite not in WAL mode",
   "The SQLite database {path} uses journal mode {mode}: a writer blocks every reader and "
   "each commit rewrites a rollback journal.",
   "Run python manage.py initdb: it switches the file to WAL for good (DBINIT_SQLITE_JOURNAL_MODE, "
   "default wal); or, with the servers stopped, sqlite3 {path} 'PRAGMA journal_mode=WAL'.")
W053 = _e("W053", "SQLite writers start deferred",
   "Connections to {alias} {problem}: two transactions that read before they write cannot "
   "both become the writer, so one fails at once with 'database is locked'.",
   "Leave DBINIT_SQLITE_TRANSACTION_MODE at immediate (OPTIONS transaction_mode IMMEDIATE) and "
   "DBINIT_SQLITE_BUSY_TIMEOUT above 0, or remove the OPTIONS override from DATABASES.")
W054 = _e("W054", "SQLite journal mode not changed",
   "initdb asked for journal mode {wanted} on {path} and it stayed {mode}: {reason}.",
   "WAL needs a local file system with shared memory (not NFS or SMB): move the file to a local "
   "disk, or set DBINIT_SQLITE_JOURNAL_MODE=delete to keep the rollback journal on purpose.")
# --- several aliases (issue 14) ---------------------------------------
E074 = _e("E074", "Database is read-only to dbinit",
   "{command} does not write to {alias}: {reason}.",
   "Run {command} on {primary} instead, the database {alias} is read from; replication (or "
   "whatever copies {primary} to {alias}) carries the change. python manage.py dbhealth "
   "--database {alias} checks {alias} without writing to it.")
E075 = _e("E075", "Read-only database missing",
   "The database {name} of the read-only alias {alias} does not exist.",
   "Create it from {primary} (a streaming replica or a restored copy); dbinit never creates or "
   "initialises a read-only alias.")
W074 = _e("W074", "Replica lagging",
   "{alias} is a standby {lag} behind its primary, more than DBINIT_REPLICA_MAX_LAG ({limit} s): "
   "reads routed to it miss the latest writes.",
   "On the standby, find what holds replay back: SELECT pg_get_wal_replay_pause_state() (a paused "
   "replay resumes with SELECT pg_wal_replay_resume()), SELECT * FROM pg_stat_wal_receiver (is it "
   "streaming from the primary?), and the standby's log (replay conflicts, disk or CPU).",
   "If that much lag is acceptable for what is read there (a delayed standby), raise "
   "DBINIT_REPLICA_MAX_LAG (seconds).")
# --- locking and history ----------------------------------------------
E060 = _e("E060", "Initialisation lock timeout",
   "Another process held the initialisation lock on {target} for {timeout}s.",
   "Wait for the other initdb or server start to finish, or find it "
   "(python manage.py dbhealth shows the holder); raise DBINIT_LOCK_TIMEOUT if "
   "initialisation is just slow.")
W060 = _e("W060", "Stale initialisation lock",
   "The initialisation lock is held by {holder}, whose lease expired {idle}s ago (it died).",
   "Nothing is required: the next initdb or server start takes the lock over. "
   "python manage.py dbrepair deletes it now.",
   repair="release_lock")
W061 = _e("W061", "Last initialisation failed",
   "The last initdb run ({when}, on {host}) ended with {outcome}.",
   "Run python manage.py initdb again and read the failed step's message.")
W062 = _e("W062", "Database not initialised by initdb",
   "No initdb run is recorded for this database.",
   "Run python manage.py initdb.")
# --- deployment topologies (poolers, pre-fork servers, probes, rolling deploys) ---
E061 = _e("E061", "Duplicate migration records",
   "django_migrations records {count} migration(s) more than once: {migrations}.",
   "Run python manage.py dbrepair: it deletes the later copies and keeps the earliest "
   "record of each migration (nothing is migrated again).",
   repair="remove_duplicate_records")
W063 = _e("W063", "Database ahead of this release",
   "The database has {count} migration(s) this release does not know: {migrations}.",
   "Nothing to do during a rolling deploy (a newer release migrated it; this one still "
   "serves). Otherwise deploy the release that has these migrations; never roll the "
   "database back by hand.")
E062 = _e("E062", "Database not ready",
   "The database did not become ready within {timeout}s: {reason}.",
   "Run python manage.py initdb (or wait for the release job that runs it), then check "
   "again; python manage.py dbhealth says what is missing.")
E063 = _e("E063", "Lock file or folder not writable",
   "The initialisation lock file {path} cannot be created or opened: {reason}.",
   "Make the database folder writable by the user running the server (chown/chmod), or "
   "point DATABASE_URL at a folder it may write.")
E064 = _e("E064", "Disk full",
   "The database could not write during {during}: {reason}.",
   "Free disk space on the database's volume (or grow it), then run python manage.py "
   "initdb again; it carries on where it stopped.")
E065 = _e("E065", "Database is read-only",
   "The database refused a write during {during}: {reason}.",
   "Point DATABASE_URL at the primary (not a read replica / hot standby), make the SQLite "
   "file and its folder writable, or clear default_transaction_read_only for the role.")
E066 = _e("E066", "Connection lost",
   "The connection to {target} was lost during {during}: {reason}.",
   "Check that the database server is running (it may have restarted or been shut down), "
   "then run the command again; initdb carries on where it stopped.")
E067 = _e("E067", "New database not reachable yet through a pooler",
   "The database {name!r} was just created, but connecting to it through {target} failed for "
   "{timeout}s: {reason}.",
   "A pooler such as PgBouncer refuses logins to a database for server_login_retry (15 s by "
   "default) after one failed because it did not exist yet: run initdb again (the database "
   "is there now), raise DBINIT_CONNECT_TIMEOUT above server_login_retry (for example 30), "
   "or create the database before the first connection through the pooler.")
# --- destructive commands ---------------------------------------------
E070 = _e("E070", "Refused in production",
   "{command} is destructive and AISECRETARY_ENV=production; it needs --force.",
   "Re-run with --force, after taking a backup, and type the database name when asked.")
E071 = _e("E071", "Confirmation failed",
   "{command} was not confirmed; nothing was changed.",
   "Re-run and answer the prompt ({expected}), or pass --noinput in automation.")
E072 = _e("E072", "Backup failed",
   "The backup of {target} failed: {reason}; nothing was changed.",
   "Make DBINIT_BACKUP_DIR writable and check free disk space, or pass --no-backup "
   "if you have your own backup.")
E073 = _e("E073", "Repair left problems",
   "dbrepair could not fix everything: {remaining}.",
   "Follow the manual steps listed for each remaining problem.")
# --- templates and snapshots ------------------------------------------
W100 = _e("W100", "Snapshot stale",
   "The committed snapshot {path} does not match the migration files: {reason}.",
   "Run python manage.py dbsnapshot and commit the file (new databases load it instead of "
   "replaying every migration).")
E100 = _e("E100", "Snapshot not written",
   "The snapshot could not be written: {reason}.",
   "Install the PostgreSQL client tools (pg_dump) and check that the role may create databases, "
   "then run python manage.py dbsnapshot again.")
# --- start-up ---------------------------------------------------------
C001 = _e("C001", "Start-up initialisation failed",
   "The server did not start: {reason}",
   "Fix the problem named above (its own id says how), then start the server again.")
C002 = _e("C002", "Start-up check failed",
   "The server did not start: DBINIT_STARTUP=check found {reason}",
   "Run python manage.py initdb as a release step before starting the servers, or set "
   "DBINIT_STARTUP=init.")
C003 = _e("C003", "Well-known password in production",
   "{count} active admin account(s) can log in with the well-known development password: {emails}.",
   "Run python manage.py changepassword {email} now (and for every other account listed); "
   "the server refuses to start in production until then.")
C004 = _e("C004", "Production configuration refused",
   "The server did not start: the production configuration is unsafe: {reason}",
   "Fix the setting named above (see README, 'Production checklist'), then start the server again.")
# --- production hardening ---------------------------------------------
E080 = _e("E080", "Unsafe SECRET_KEY in production",
   "SECRET_KEY {why}; production refuses it.",
   "Set SECRET_KEY to a new random value of 50 or more characters, for example the output of "
   "python -c 'from django.core.management.utils import get_random_secret_key as k; print(k())'.")
E081 = _e("E081", "ALLOWED_HOSTS empty in production",
   "ALLOWED_HOSTS is empty while AISECRETARY_ENV=production: every request would be refused.",
   "Set ALLOWED_HOSTS to the site's host names, comma-separated (e.g. ALLOWED_HOSTS=app.example.com).")
E082 = _e("E082", "Unsafe database name",
   "The {kind} name {name} cannot be used safely in SQL: {reason}.",
   "Rename the {kind} (or point DATABASE_URL at another one) using at most 63 bytes and no "
   "control characters.")
E083 = _e("E083", "Control character in DATABASE_URL",
   "DATABASE_URL {url} has a control character in its {part}.",
   "Remove the character (often a stray %00 or newline) from DATABASE_URL.")
E084 = _e("E084", "Backup folder not private",
   "The backup folder {path} {reason}; backups hold password hashes and session keys.",
   "Use a folder owned by this user and writable by nobody else (chown $(id -u) {path}; "
   "chmod 700 {path}), or point DBINIT_BACKUP_DIR elsewhere.")
E085 = _e("E085", "Database belongs to production",
   "{command} would change a database that records environment {recorded}, from a {current} "
   "environment; nothing was changed.",
   "Run it with AISECRETARY_ENV={recorded} (where that environment's rules apply), or, if this "
   "really is meant, re-run with --force and type the database name when asked.")
E086 = _e("E086", "Admin password too weak",
   "The admin password for {email} is refused by AUTH_PASSWORD_VALIDATORS: {reasons}",
   "Choose a longer, uncommon password (DBINIT_ADMIN_PASSWORD or the prompt), or leave it unset "
   "so that initdb generates one.")
E087 = _e("E087", "Unsafe lock file",
   "The lock file {path} {reason}; dbinit does not write through it.",
   "Remove {path} (it is recreated as a private regular file) and find out who created it.")
E088 = _e("E088", "Password file cannot be written",
   "The generated admin password could not be written to {path}: {reason}.",
   "Set DBINIT_ADMIN_PASSWORD_FILE to a path in a folder this user can write (the file must not "
   "exist yet), or pass --print-password; then set the admin's password with "
   "python manage.py changepassword {email}.")
E089 = _e("E089", "SQLite path is not a regular file",
   "{path} is a {kind}, not a database file; it was left untouched.",
   "Point DATABASE_URL at a regular file (e.g. sqlite:////srv/aisecretary/db.sqlite3); dbinit never "
   "opens, moves or replaces anything else.")
E090 = _e("E090", "PostgreSQL template database named",
   "DATABASE_URL names {name}, a {why}; dbinit never writes to a template (every database "
   "created from it would inherit the change).",
   "Point DATABASE_URL at the application's own database (initdb creates it if it is missing).")
W080 = _e("W080", "Database initialised for another environment",
   "The database records environment {recorded}; this process runs as {current}.",
   "Check DATABASE_URL: a {current} shell is pointed at a {recorded} database. The record is "
   "kept; destructive commands refuse without --force and the typed name.")
# --- informational ----------------------------------------------------
I001 = _e("I001", "Database reachable",
   "Connected to {vendor} {version}; round trip {ms} ms.", "Nothing to do.")
I002 = _e("I002", "Engine details", "{vendor}: {details}.", "Nothing to do.")
I003 = _e("I003", "Migrations applied", "All {count} migrations applied; history consistent.", "Nothing to do.")
I004 = _e("I004", "Schema matches the migrations",
   "{count} tables with their columns, nullability, indexes and constraints as the applied migrations say.",
   "Nothing to do.")
I005 = _e("I005", "Seed data present", "System tenant, system roles and an active staff admin present.",
   "Nothing to do.")
I006 = _e("I006", "Configuration valid", "{environment} environment, {vendor} at {target}.", "Nothing to do.")
I007 = _e("I007", "Last initialisation succeeded", "Last {trigger} run {when} on {host}: {outcome} in {ms} ms.",
   "Nothing to do.")
I008 = _e("I008", "Migration files unchanged",
   "{count} applied migration file(s) unchanged since they were applied.", "Nothing to do.")
I009 = _e("I009", "Models match migrations", "Models match the migrations.", "Nothing to do.")
I010 = _e("I010", "Initialisation lock free", "Initialisation lock is free.", "Nothing to do.")
I011 = _e("I011", "Database environment", "The database was initialised for {environment}.", "Nothing to do.")
I012 = _e("I012", "Database environment not recorded", "No environment recorded yet (initdb records it).",
   "Run python manage.py initdb.")
I016 = _e("I016", "Migration set as last verified",
   "The migration files and applied records match those of the last verified initialisation "
   "(fingerprint {fingerprint}); the migration graph was not loaded.",
   "Nothing to do. python manage.py dbhealth loads the graph for the full answer.")
I017 = _e("I017", "Template ignored",
   "The template {template} was not used: {reason}.",
   "Nothing to do: the database was migrated normally and a matching template built for next time.")
I018 = _e("I018", "Committed snapshot",
   "The snapshot {path} {state}.",
   "Nothing to do; python manage.py dbsnapshot writes it again from the migrations.")
I022 = _e("I022", "Schema constructs not judged",
   "Checked for their table and columns only (dbinit cannot judge the rest): {items}.",
   "Nothing to do; check these by hand if you suspect damage.")
I013 = _e("I013", "Ready", "The database is reachable, migrated for this release and seeded.", "Nothing to do.")
I014 = _e("I014", "Start-up finished", "The start-up step finished in this process.", "Nothing to do.")
I026 = _e("I026", "No migration checksums yet", "No checksums recorded yet.",
   "Nothing to do: initdb and migrate record them as they apply migrations.")
I027 = _e("I027", "Seed data not checked", "Seed data not checked: its tables are not there yet.",
   "Run python manage.py initdb.")
I028 = _e("I028", "Initialisation in progress", "Initialisation in progress ({holder}).",
   "Nothing to do: another initdb or server start holds the lock.")
I019 = _e("I019", "Routed to another database",
   "{what}: routed to {where}, not to {alias}; not checked here.", "Nothing to do.")
I020 = _e("I020", "Read-only database",
   "{alias} is read-only to dbinit ({reason}): it is checked, never written.", "Nothing to do.")
I029 = _e("I029", "Replication lag",
   "{alias} is a standby in recovery; replication lag {lag} (DBINIT_REPLICA_MAX_LAG {limit} s).",
   "Nothing to do.")
I030 = _e("I030", "No replication lag to measure",
   "{alias} is not a standby in recovery ({why}): it has no replication lag to measure.", "Nothing to do.")

# Every entry above, in the order written (the reference page follows it).
CATALOGUE: dict[str, Entry] = {e.id: e for e in list(globals().values()) if isinstance(e, Entry)}

_PLACEHOLDER = re.compile(r"\{(\w+)(![rs])?\}")


def get(code: str) -> Entry:
    """Return the catalogue entry for ``code`` (``E010`` or ``dbinit.E010``)."""
    if not code.startswith("dbinit."):
        code = f"dbinit.{code}"
    return CATALOGUE[code]


class _Default(dict):
    """Leave unknown placeholders visible instead of raising KeyError."""

    def __missing__(self, key):
        return "{" + key + "}"


def _format(template: str, context: dict) -> str:
    return template.format_map(_Default(context))


class DbinitError(Exception):
    """A catalogued failure: raised deep, rendered once at the edge."""

    def __init__(self, code: str | Entry, step: str | None = None, **context):
        self.entry = code if isinstance(code, Entry) else get(code)
        self.code = self.entry.id
        self.context = context
        self.step = step
        super().__init__(self.message)

    @property
    def level(self) -> str:
        return self.entry.level

    @property
    def message(self) -> str:
        return _format(self.entry.message, self.context)

    @property
    def resolution(self) -> list[str]:
        return [_format(s, self.context) for s in self.entry.resolution]

    @property
    def hint(self) -> str:
        return " ".join(self.resolution)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def render(self) -> str:
        """The text shown to a person: id, title, message, what to do."""
        where = f" (step: {self.step})" if self.step else ""
        lines = [f"{self.code} {self.entry.title}{where}", f"  {self.message}", "  To fix:"]
        lines += [f"    - {s}" for s in self.resolution]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict:
        return {
            "id": self.code,
            "level": self.level,
            "title": self.entry.title,
            "message": self.message,
            "hint": self.hint,
            "step": self.step,
        }


class ConfigurationError(DbinitError):
    """Raised while reading settings; manage.py and wsgi render it without a traceback."""


def reference_markdown() -> str:
    """The error-code reference page, generated from the catalogue."""
    out = [
        "# dbinit error codes",
        "",
        "Generated from `dbinit/errors.py` by `python manage.py dbinit_docs`; do not edit by hand.",
        "Ids follow Django's check ids: C critical (prevents start-up), E error, W warning, I info.",
        "Codes marked *repairable* are fixed by `python manage.py dbrepair`.",
        "",
    ]
    for entry in CATALOGUE.values():
        tag = " *(repairable)*" if entry.fixable else ""
        out += [f"## {entry.id}: {entry.title}{tag}", "", f"Level: {entry.level}.", "",
                f"Message: {entry.message}", "", "Resolution:", ""]
        out += [f"- {step}" for step in entry.resolution]
        out.append("")
    return "\n".join(out)
