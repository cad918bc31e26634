"""Access-control settings of a service with an HTTP API, from `CAIRN_AUTH_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AuthSettings"]


class AuthSettings(BaseSettings):
    """Whether HTTP APIs require API keys, and where the first admin key comes from."""

    model_config = SettingsConfigDict(env_prefix="CAIRN_AUTH_", extra="ignore", frozen=True)

    enabled: bool = Field(
        True,
        description="Require an API key on every HTTP API. Turning it off makes every caller a "
        "platform-wide admin: only for a laptop.",
    )
    bootstrap_key_file: Path | None = Field(
        None,
        description="A mounted file holding an API key (`cairn_<id>_<secret>`) installed at start-up "
        "as a platform-wide admin key when its id is not stored yet: how the first admin gets in.",
    )
    cache_ttl_s: float = Field(
        10.0, ge=0, description="Seconds a verified key is trusted without a look-up (revocation delay)."
    )
