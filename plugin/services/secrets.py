"""Secrets at rest: Fernet with the key from FLYWHEEL_SECRET_KEY or a private key file."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from plugin.errors import ConfigError
from plugin.settings import Settings


def _key_from_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A key for one purpose (e.g. signing panel links), derived from the installation's secret
    key: rotating that key also retires every link signed with the old one."""
    base = _installation_key(settings)
    return hmac.new(base, purpose.encode(), hashlib.sha256).digest()


def _installation_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    if settings.is_sqlite:
        return _key_from_file(settings.secret_key_file)
    raise ConfigError(
        "FLYWHEEL_SECRET_KEY is not set",
        hint="generate one with `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'` and keep it with your database backups",
    )


def cipher(settings: Settings) -> Fernet:
    """The Fernet cipher for this installation. On the embedded default a key file is created once."""
    key = _installation_key(settings)
    try:
        return Fernet(key)
    except ValueError:
        raise ConfigError(
            "FLYWHEEL_SECRET_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def encrypt(settings: Settings, plaintext: str) -> str:
    return cipher(settings).encrypt(plaintext.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return cipher(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ConfigError(
            "a stored secret cannot be decrypted with the current key",
            hint="FLYWHEEL_SECRET_KEY (or .flywheel-secret) changed since the secret was saved; "
            "restore the old key or set the secret again",
        ) from None
