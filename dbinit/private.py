"""Files only their owner can read: databases, lock files, backups and their folders.

They hold password hashes and live session keys, so they are created 0600 (folders 0700)
whatever the umask, never opened through a symbolic link, and a backup folder that
someone else owns or may write to is refused (``dbinit.E084``): another local user could
otherwise read the backups, or swap them.

SQLite creates its own files (and gives ``-wal``/``-shm``/``-journal`` the mode of the
database file): :func:`make_sqlite_files_private` runs on every new SQLite connection
(one ``lstat`` per file) and narrows the modes of files this user owns.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

from . import errors
from .errors import DbinitError

logger = logging.getLogger("dbinit")

FILE_MODE = 0o600
FOLDER_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def narrow(path, mode=FILE_MODE) -> bool:
    """chmod the regular file ``path`` to ``mode`` if this user owns it and others have any access.

    Never follows a link, and never touches a device, pipe or socket (chmod on a path that names
    /dev/null would change the device for everyone)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or not stat.S_IMODE(st.st_mode) & 0o077:
        return False
    os.chmod(path, mode)
    return True


def make_sqlite_files_private(path: Path | None) -> None:
    """Narrow an SQLite database file and its side files to 0600."""
    if path is None:
        return
    for candidate in (str(path), *(f"{path}{side}" for side in SQLITE_SIDE_FILES)):
        try:
            if narrow(candidate):
                logger.info("Made %s private (mode 0600)", candidate)
        except OSError as exc:  # not ours to fix (read-only mount...): the health check says so
            logger.debug("Could not narrow the mode of %s: %s", candidate, exc)


def on_connection_created(sender, connection, **kwargs):
    """``connection_created`` receiver: SQLite files made by any command (migrate too) end up 0600."""
    if connection.vendor == "sqlite":
        from .database import sqlite_path

        make_sqlite_files_private(sqlite_path(connection.settings_dict))


def private_folder(path: Path, *, step=None) -> Path:
    """Create ``path`` (0700) or make sure an existing one is safe for backups; raise E084 if not."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, FOLDER_MODE)
        os.chmod(path, FOLDER_MODE)  # mkdir's mode is filtered by the umask; this is not
        return path
    except FileExistsError:
        pass
    except OSError as exc:
        raise DbinitError(errors.E072, step=step, target=str(path),
                          reason=f"cannot create {path}: {exc.strerror}") from None
    try:
        st = os.stat(path)
    except OSError as exc:  # e.g. a path below a regular file: "Not a directory"
        raise DbinitError(errors.E084, step=step, path=str(path), reason=f"cannot be used ({exc.strerror})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise DbinitError(errors.E084, step=step, path=str(path), reason="is not a folder")
    if st.st_uid != os.geteuid():
        raise DbinitError(errors.E084, step=step, path=str(path), reason=f"is owned by another user (uid {st.st_uid})")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise DbinitError(errors.E084, step=step, path=str(path),
                          reason=f"is writable by others (mode {stat.S_IMODE(st.st_mode):04o})")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, FOLDER_MODE)  # ours and only readable by others: just narrow it
    return path


def create_private_file(path: Path) -> int:
    """Create ``path`` 0600 and return its descriptor; it must not exist (no link is followed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def touch_private_file(path: Path) -> Path:
    """Create an empty 0600 file at ``path`` for another writer (sqlite3, pg_dump) to fill."""
    os.close(create_private_file(path))
    return path


def open_lock_file(path: Path, *, write=True, step=None) -> int:
    """Open (creating 0600) the lock file; raise E087 for a link, a non-regular file or a foreign one."""
    flags = (os.O_RDWR | os.O_CREAT if write else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DbinitError(errors.E087, step=step, path=str(path), reason="is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        reason = None
        if not stat.S_ISREG(st.st_mode):
            reason = "is not a regular file"
        elif st.st_nlink > 1:
            reason = "has other hard links"
        elif st.st_uid != os.geteuid():
            reason = f"is owned by another user (uid {st.st_uid})"
        if reason:
            raise DbinitError(errors.E087, step=step, path=str(path), reason=reason)
        if write and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_password_file(password: str, email: str, path: Path | None = None) -> Path:
    """Write a generated password to a new 0600 file and return its path (E088 if it cannot).

    ``DBINIT_ADMIN_PASSWORD_FILE`` names the file, by default ``var/admin-password-STAMP.txt``.
    The file must not exist yet and is never written through a link.
    """
    from datetime import UTC, datetime

    from django.conf import settings

    if path is None:
        configured = getattr(settings, "DBINIT_ADMIN_PASSWORD_FILE", None)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        path = Path(configured) if configured else Path(settings.BASE_DIR) / "var" / f"admin-password-{stamp}.txt"
    path = Path(path).absolute()
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=FOLDER_MODE)
        fd = create_private_file(path)
    except OSError as exc:
        reason = "it exists already" if exc.errno == errno.EEXIST else (
            "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror)
        raise DbinitError(errors.E088, path=str(path), reason=reason, email=email) from None
    try:
        os.write(fd, f"{password}\n".encode())
    finally:
        os.close(fd)
    return path
