"""Mosquitto password files, written without mosquitto_passwd.

Mosquitto 2 reads `user:$7$<iterations>$<salt>$<hash>` lines: PBKDF2-HMAC-SHA512 with a 12-byte
salt, both base64. Making them with the standard library lets the demo and an admin's laptop
write them where mosquitto is not installed; tests check mosquitto accepts them. Mosquitto
reads the iteration count from each line: 20,000 (mosquitto_passwd uses 101) costs the broker
~10 ms per CONNECT and slows an offline guess at a chosen password; generated passwords
(`new_password`, 144 random bits) cannot be guessed at any count.
"""

import base64
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from stockwire.topics import TopicError, topic_level

ITERATIONS = 20_000
SALT_BYTES = 12
PASSWORD_BYTES = 18


class PasswordFileError(ValueError):
    pass


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${_b64(salt)}${_b64(digest)}"


def set_password(path: Path, username: str, password: str) -> None:
    """Add `username` to the file or replace its line; other lines stay as they are.

    The file is replaced atomically, so a broker reloading it (SIGHUP) never reads half of it;
    it keeps its owner and mode (mosquitto must still read it); a new one is 0600."""
    try:
        topic_level(username, "username")  # the ACL puts it into topics (%u)
    except TopicError as e:
        raise PasswordFileError(f"{path}: {e}") from None
    if not password:
        raise PasswordFileError(f"{path}: the password of {username!r} is empty")
    lines = path.read_text().splitlines() if path.exists() else []
    entry = f"{username}:{hash_password(password)}"
    if any(_user(line) == username for line in lines):
        lines = [entry if _user(line) == username else line for line in lines]
    else:
        lines.append(entry)
    _replace(path, "\n".join(lines) + "\n")


def _replace(path: Path, text: str) -> None:
    old = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if old is None else old.st_mode & 0o777)
        if old is not None and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
            os.fchown(fd, old.st_uid, old.st_gid)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _user(line: str) -> str:
    return line.split(":", 1)[0]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
