"""Event signing keys of the local stack: one Ed25519 key pair per service and one for the CLI.

Made once under `<stack dir>/keys/`: `private/<owner>.pem` (mode 0600, the signing key a process
reads through `CAIRN_SIGNING_KEY_FILE`) and `trusted/<owner>.pub` (the public keys every consumer
trusts, `CAIRN_TRUSTED_KEYS_DIR`). Existing keys are kept, so a restart does not rotate them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cairn_localstack.config import SERVICE_METRICS_OFFSETS

__all__ = ["CLI_OWNER", "KEY_OWNERS", "ensure_keys", "private_key_file", "signing_env", "trusted_keys_dir"]

CLI_OWNER = "cli"
KEY_OWNERS: tuple[str, ...] = (*SERVICE_METRICS_OFFSETS, CLI_OWNER)
"""Who gets a key pair: every service, and the `cairn` CLI (`cli`, which topic files call `upstream`)."""


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def trusted_keys_dir(stack_dir: Path) -> Path:
    """The folder of `<owner>.pub` public keys under a stack's data folder."""
    return stack_dir / "keys" / "trusted"


def private_key_file(trusted_dir: Path, owner: str) -> Path:
    """The private key of `owner` beside the trusted keys folder `trusted_dir`."""
    return trusted_dir.parent / "private" / f"{owner}.pem"


def ensure_keys(stack_dir: Path, owners: Iterable[str] = KEY_OWNERS) -> Path:
    """Make the missing key pairs of `owners` under `stack_dir`; returns the trusted keys folder."""
    trusted = trusted_keys_dir(stack_dir)
    private_dir = private_key_file(trusted, "x").parent
    trusted.mkdir(parents=True, exist_ok=True)
    private_dir.mkdir(parents=True, exist_ok=True)
    private_dir.chmod(0o700)
    for owner in owners:
        private, public = private_key_file(trusted, owner), trusted / f"{owner}.pub"
        if not private.exists():
            # written aside, then linked into place: of two processes making it at once, one wins
            tmp = private.with_name(f".{owner}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(_new_private_pem())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, private)
            tmp.unlink()
        expected = _public_pem(private.read_bytes())
        if not public.exists() or expected not in public.read_bytes():
            public.write_bytes(expected)
    return trusted


def signing_env(stack_dir: Path, owner: str = CLI_OWNER) -> dict[str, str]:
    """The variables that make a process sign as `owner` and verify against the stack's keys (which are
    made when missing): `CAIRN_TRUSTED_KEYS_DIR` and `CAIRN_SIGNING_KEY_FILE`."""
    trusted = ensure_keys(stack_dir)
    return {
        "CAIRN_TRUSTED_KEYS_DIR": str(trusted),
        "CAIRN_SIGNING_KEY_FILE": str(private_key_file(trusted, owner)),
    }
