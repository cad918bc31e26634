"""Signed privileged events: Ed25519 signatures over the payload and the CloudEvents attributes.

Events that change what is served or who may do what (`cairn_events.PRIVILEGED_EVENT_TYPES`) are
signed by their producer and verified by every consumer that acts on them. The signature covers
`signing_input(headers, value)`: the record value byte for byte and the envelope headers of
`SIGNED_HEADERS` (id, type, source, subject, time, tenant, correlation, causation and replay ids,
content type, data schema), each length-prefixed so that no two envelopes share an input.

It travels in two headers: `ce_signature` (the 64-byte signature, base64) and `ce_signaturekey`
(the key id: the first 16 hex digits of the SHA-256 of the raw public key). A consumer trusts the
public keys of a folder of `<owner>.pub` files (`CAIRN_TRUSTED_KEYS_DIR`), each holding one or more
PEM public keys of that owner (several during a rotation). The owner is a service name, or `cli`
(the `cairn` CLI), which topic files call `upstream`. A signature is accepted only when it verifies
with a trusted key whose owner is a producer of the event type's topic (`schemas/topics/*.yaml`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cairn_bus.secrets import SecretNotFoundError, read_secret
from cairn_events import EVENT_TYPES, PRIVILEGED_EVENT_TYPES, DeadLetterKind, load_topics
from cairn_events.topics import EXTERNAL

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_KEY_HEADER",
    "SIGNED_HEADERS",
    "KeyRing",
    "SignatureError",
    "SignaturePolicy",
    "Signer",
    "SigningConfigError",
    "TrustedKey",
    "generate_private_key_pem",
    "key_id",
    "party_of",
    "public_key_pem",
    "signatures_required",
    "signer_from_env",
    "signing_input",
]

SIGNATURE_HEADER = "ce_signature"
SIGNATURE_KEY_HEADER = "ce_signaturekey"
SIGNED_HEADERS = (
    "ce_specversion",
    "ce_id",
    "ce_type",
    "ce_source",
    "ce_subject",
    "ce_time",
    "ce_dataschema",
    "content-type",
    "ce_tenant",
    "ce_correlationid",
    "ce_causationid",
    "ce_replayof",
    "ce_replayid",
)
"""The headers a signature covers, in this order (an absent header is signed as absent)."""
_DOMAIN = b"cairn-event-signature/v1\n"
CLI_OWNER = "cli"


class SigningConfigError(RuntimeError):
    """Signing or verification is misconfigured (unreadable key, signatures required but no keys)."""


class SignatureError(Exception):
    """A privileged record failed verification; `kind` is the dead-letter kind, `reason` says why."""

    def __init__(self, kind: DeadLetterKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _last_values(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, bytes]:
    # like `meta_from_headers`, the last of repeated headers wins: the one the consumer acts on
    return {k: (v or b"") for k, v in headers}


def _field(value: bytes | None) -> bytes:
    if value is None:
        return b"\x00"
    return b"\x01" + len(value).to_bytes(4, "big") + value


def signing_input(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> bytes:
    """The bytes a signature covers: a domain tag, the `SIGNED_HEADERS` values, then the record value."""
    h = _last_values(headers)
    parts = [_DOMAIN]
    parts.extend(_field(h.get(name)) for name in SIGNED_HEADERS)
    parts.append(_field(value or b""))
    return b"".join(parts)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The id of a public key: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_private_key_pem() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(private_pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo PEM of the public half of a PEM private key."""
    return Signer.from_pem(private_pem).public_pem()


def party_of(owner: str) -> str:
    """How topic files name the owner of a key: the service itself, `upstream` for the CLI."""
    return EXTERNAL if owner == CLI_OWNER else owner


@dataclass(frozen=True)
class Signer:
    """Signs records with one Ed25519 private key (a producing service's, or the CLI's)."""

    private_key: Ed25519PrivateKey
    key_id: str

    @classmethod
    def from_pem(cls, pem: bytes | str) -> Signer:
        """Load a PEM (PKCS#8) Ed25519 private key; raises SigningConfigError when it is not one."""
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningConfigError(f"the signing key is not a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningConfigError(f"the signing key is a {type(key).__name__}, not an Ed25519 key")
        return cls(key, key_id(key.public_key()))

    def public_pem(self) -> bytes:
        """The public key, as SubjectPublicKeyInfo PEM (the content of a `<owner>.pub` file)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, headers: list[tuple[str, bytes]], value: bytes | None) -> list[tuple[str, bytes]]:
        """`headers` without any earlier signature headers, plus `ce_signature` and `ce_signaturekey`."""
        kept = [(k, v) for k, v in headers if k not in (SIGNATURE_HEADER, SIGNATURE_KEY_HEADER)]
        signature = self.private_key.sign(signing_input(kept, value))
        return [
            *kept,
            (SIGNATURE_HEADER, base64.b64encode(signature)),
            (SIGNATURE_KEY_HEADER, self.key_id.encode()),
        ]


@dataclass(frozen=True)
class TrustedKey:
    """One trusted public key and who holds its private half."""

    owner: str
    key_id: str
    public_key: Ed25519PublicKey


def _pem_blocks(text: str) -> list[bytes]:
    blocks, current = [], list[str]()
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            current = [line]
        elif line.startswith("-----END") and current:
            current.append(line)
            blocks.append(("\n".join(current) + "\n").encode())
            current = []
        elif current:
            current.append(line)
    return blocks


class KeyRing:
    """The trusted public keys, by key id; verifies privileged records against the topic producers."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self.keys: dict[str, TrustedKey] = {}
        for key in keys:
            known = self.keys.get(key.key_id)
            if known is not None and known.owner != key.owner:
                raise SigningConfigError(
                    f"key {key.key_id} is trusted for both {known.owner!r} and {key.owner!r}"
                )
            self.keys[key.key_id] = key

    @classmethod
    def from_dir(cls, folder: Path) -> KeyRing:
        """Every `<owner>.pub` file of `folder` (each one or more PEM Ed25519 public keys)."""
        if not folder.is_dir():
            raise SigningConfigError(f"the trusted keys folder {folder} does not exist")
        keys: list[TrustedKey] = []
        for path in sorted(folder.glob("*.pub")):
            blocks = _pem_blocks(path.read_text(encoding="utf-8"))
            if not blocks:
                raise SigningConfigError(f"{path} holds no PEM public key")
            for block in blocks:
                try:
                    public = serialization.load_pem_public_key(block)
                except ValueError as exc:
                    raise SigningConfigError(f"{path}: not a PEM public key ({exc})") from None
                if not isinstance(public, Ed25519PublicKey):
                    raise SigningConfigError(f"{path}: a {type(public).__name__}, not an Ed25519 key")
                keys.append(TrustedKey(path.stem, key_id(public), public))
        return cls(keys)

    def verify(
        self,
        event_type: str,
        headers: Iterable[tuple[str, bytes | None]],
        value: bytes | None,
        producers: Collection[str] | None = None,
    ) -> TrustedKey:
        """The key that signed this record; raises SignatureError (`unsigned` or `forged`) otherwise.

        `producers` are the parties allowed to publish `event_type` (default: its topic file's).
        """
        headers = list(headers)
        h = _last_values(headers)
        signature_b64, kid = h.get(SIGNATURE_HEADER), h.get(SIGNATURE_KEY_HEADER)
        if not signature_b64 or not kid:
            raise SignatureError(
                DeadLetterKind.UNSIGNED,
                f"{event_type} is a privileged event and must be signed: no {SIGNATURE_HEADER} "
                f"and {SIGNATURE_KEY_HEADER} headers",
            )
        kid_text = kid.decode("utf-8", "replace")
        key = self.keys.get(kid_text)
        if key is None:
            raise SignatureError(
                DeadLetterKind.FORGED, f"{event_type} is signed with key {kid_text!r}, which is not trusted"
            )
        try:
            signature = base64.b64decode(signature_b64, validate=True)
            key.public_key.verify(signature, signing_input(headers, value))
        except (binascii.Error, InvalidSignature):
            raise SignatureError(
                DeadLetterKind.FORGED,
                f"{event_type}: the signature does not verify with key {key.key_id} of {key.owner!r} "
                "(payload or envelope altered, or a forged signature)",
            ) from None
        allowed = producers if producers is not None else topic_producers(event_type)
        if party_of(key.owner) not in allowed:
            raise SignatureError(
                DeadLetterKind.FORGED,
                f"{event_type} is signed by {key.owner!r} (key {key.key_id}), which is not a producer "
                f"of its topic (producers: {', '.join(sorted(allowed))})",
            )
        return key


def topic_producers(event_type: str) -> frozenset[str]:
    """The parties the topic file of `event_type`'s topic lists as producers."""
    return frozenset(load_topics()[EVENT_TYPES[event_type].topic].producers)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def signatures_required(environ: Mapping[str, str] | None = None) -> bool:
    """Whether `CAIRN_REQUIRE_SIGNATURES` is set: privileged events are then never published
    unsigned, and a consumer without trusted keys refuses to start."""
    env = os.environ if environ is None else environ
    return _flag(env.get("CAIRN_REQUIRE_SIGNATURES"))


def signer_from_env(environ: Mapping[str, str] | None = None) -> Signer | None:
    """The signer of this process: the secret `signing_key` (`CAIRN_SIGNING_KEY`, `..._FILE` or Vault,
    through `cairn_bus.secrets.read_secret`), or None when none is configured."""
    env = os.environ if environ is None else environ
    if not any(env.get(v) for v in ("CAIRN_SIGNING_KEY", "CAIRN_SIGNING_KEY_FILE", "CAIRN_VAULT_ADDR")):
        return None
    try:
        pem = read_secret("signing_key", environ=env)
    except SecretNotFoundError:
        if env.get("CAIRN_SIGNING_KEY") or env.get("CAIRN_SIGNING_KEY_FILE"):
            raise
        return None  # Vault is configured but holds no signing key
    return Signer.from_pem(pem)


@dataclass(frozen=True)
class SignaturePolicy:
    """What a consumer does with privileged events: verify them against `keyring`, or (no keyring)
    accept them unverified, which `from_env` allows only when signatures are not required."""

    keyring: KeyRing | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SignaturePolicy:
        """`CAIRN_TRUSTED_KEYS_DIR` (the `<owner>.pub` folder) and `CAIRN_REQUIRE_SIGNATURES`: with the
        folder, verify; without it, raise SigningConfigError when signatures are required, else verify
        nothing."""
        env = os.environ if environ is None else environ
        folder = env.get("CAIRN_TRUSTED_KEYS_DIR")
        if folder:
            return cls(KeyRing.from_dir(Path(folder)))
        if signatures_required(env):
            raise SigningConfigError(
                "CAIRN_REQUIRE_SIGNATURES is set but no trusted keys are configured (CAIRN_TRUSTED_KEYS_DIR)"
            )
        return cls(None)

    @property
    def enabled(self) -> bool:
        """Whether privileged events are verified."""
        return self.keyring is not None

    def check(
        self, event_type: str, headers: Iterable[tuple[str, bytes | None]], value: bytes | None
    ) -> None:
        """Raise SignatureError when `event_type` is privileged and the record fails verification."""
        if self.keyring is None or event_type not in PRIVILEGED_EVENT_TYPES:
            return
        self.keyring.verify(event_type, headers, value)
