"""Settings of the local stack: profile, folder, loopback ports and credentials.

Every field reads `CAIRN_STACK_<FIELD>` from the environment. A named profile may carry its own
defaults (see `PROFILE_DEFAULTS`); an environment variable or an explicit argument still wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CAIRN_STACK_"

#: Offsets from `s3_port` of SeaweedFS's other listeners. The admin gRPC port is the admin HTTP
#: port + 10000 because `weed mini`'s built-in worker always dials that address, whatever
#: `-admin.port.grpc` says (seaweedfs 4.48).
S3_PORT_OFFSETS: dict[str, int] = {
    "s3": 0,
    "master": 1,
    "master.grpc": 2,
    "volume": 3,
    "volume.grpc": 4,
    "filer": 5,
    "filer.grpc": 6,
    "s3.grpc": 7,
    "admin": 8,
    "admin.grpc": 8 + 10000,
}

#: Offset from `metrics_port_base` of each service's /metrics port (CAIRN_METRICS_PORT).
SERVICE_METRICS_OFFSETS: dict[str, int] = {
    "prompt-store": 0,
    "retriever": 1,
    "safety": 2,
    "inference": 3,
    "feedback": 4,
    "tuner": 5,
    "evaluator": 6,
    "audit": 7,
    "gateway": 8,
}

#: Member k (1-based) of a service's consumer group run locally (`cairn services up --replicas`) has its
#: /metrics port at `metrics_port_base + (k - 1) * REPLICA_PORT_STRIDE + SERVICE_METRICS_OFFSETS[service]`:
#: member 1 keeps the port it always had, each further member shifts the whole block by the stride.
REPLICA_PORT_STRIDE = 10
#: The most members of one service run locally; with the stride, the `local` profile's blocks
#: (19460-19538) stay clear of the `test` profile's (19560-19638).
MAX_REPLICAS = 8
#: Separates a service's name from its member number in process names: `retriever#2`.
MEMBER_SEPARATOR = "#"
EXTRA_MEMBER_ENV = {"CAIRN_HTTP_ENABLED": "false"}
"""What members beyond the first get: a service's HTTP API stays on member 1 (its fixed local port;
there is no load balancer in front of the members locally); the others only consume."""


LOCAL_SERVICE_ENV: dict[str, dict[str, str]] = {
    # the int8 copy of the base model beside it, and the routing policy that sends batch work and tenants
    # short of budget to it (docs/routing.md, docs/quantization.md); an environment variable already set wins
    "inference": {"CAIRN_QUANTIZED_BACKENDS": '["int8"]', "CAIRN_ROUTING_DIR": "infra/routing"},
    # the closed loop with no operator step (docs/closed-loop.md): the feedback service builds the datasets
    # of infra/datasets from new corrections; the tuner tunes them by infra/tuning's per-dataset policies, and
    # any other dataset version with at least 100 train rows by the global growth policy, continuing the
    # production adapter; the evaluator promotes a candidate that passes its gate to production
    "feedback": {"CAIRN_DATASET_POLICY_DIR": "infra/datasets"},
    "tuner": {
        "CAIRN_TUNE_MIN_ROWS": "100",
        "CAIRN_TUNE_START_FROM": "production",
        "CAIRN_TUNE_POLICY_DIR": "infra/tuning",
    },
    "evaluator": {"CAIRN_AUTO_PROMOTE_PRODUCTION": "true"},
}
"""What the local stack's services get on top of their defaults, by service: the cost levers `make run` shows."""


def member_name(service: str, member: int = 1) -> str:
    """The process name of member `member` of `service`'s consumer group: the service's own name for
    the first, `<service>#<member>` for the others."""
    if not 1 <= member <= MAX_REPLICAS:
        raise ValueError(f"member {member} of {service}: members are numbered 1 to {MAX_REPLICAS}")
    return service if member == 1 else f"{service}{MEMBER_SEPARATOR}{member}"


def split_member(name: str) -> tuple[str, int]:
    """(service, member number) of a process name made by `member_name`; a plain name is member 1."""
    service, sep, number = name.partition(MEMBER_SEPARATOR)
    if not sep:
        return name, 1
    if not number.isdigit() or not 2 <= int(number) <= MAX_REPLICAS or number.startswith("0"):
        raise ValueError(f"{name!r}: a member is named <service>{MEMBER_SEPARATOR}<2..{MAX_REPLICAS}>")
    return service, int(number)


#: Per-profile defaults, applied under environment variables and explicit arguments.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "test": {
        "kafka_port": 19192,
        "pg_port": 15532,
        "s3_port": 18433,
        "broker_storage": "memory",
        "prometheus_port": 19190,
        "metrics_port_base": 19560,
    },
}


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder above `start` holding `libs/` and a `Makefile` (or, before the Makefile
    exists, a `pyproject.toml`); the current directory when there is none."""
    here = (start or Path(__file__)).resolve()
    candidates = [here, *here.parents]
    for marker in ("Makefile", "pyproject.toml"):
        for folder in candidates:
            if (folder / "libs").is_dir() and (folder / marker).is_file():
                return folder
    return Path.cwd()


def _default_root_dir(data: dict[str, Any]) -> Path:
    return find_repo_root() / ".cairn" / str(data.get("profile", "local"))


class StackConfig(BaseSettings):
    """Where the stack lives and what it listens on. All listeners bind `host` (loopback)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    profile: str = "local"
    root_dir: Path = Field(default_factory=_default_root_dir)
    host: str = "127.0.0.1"
    kafka_port: int = Field(default=19092, ge=1, le=65535)
    broker_storage: Literal["s3", "memory"] = "s3"
    pg_port: int = Field(default=15432, ge=1, le=65535)
    pg_user: str = "cairn"
    pg_database: str = "cairn"
    s3_port: int = Field(default=18333, ge=1, le=65535 - 10008)
    s3_access_key: str = "cairn"
    s3_secret_key: str = "cairn-local-secret"
    master_key: str = Field(
        default="sf3Awck6ram5uv6P8KTY6Kc6WReAjqzsavyhDHco86k=",
        description="The master key wrapping tenants' data keys (`cairn_auth.encryption`): a fixed "
        "development value for the local stacks only; production reads its own from the secrets source.",
    )
    broker_bucket: str = "tansu"
    prometheus: bool = Field(default=False, description="Also run Prometheus, scraping the services.")
    prometheus_port: int = Field(default=19090, ge=1, le=65535)
    metrics_port_base: int = Field(
        default=19460,
        ge=1,
        le=65535 - (MAX_REPLICAS - 1) * REPLICA_PORT_STRIDE - len(SERVICE_METRICS_OFFSETS),
    )

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            profile = str(data.get("profile", "local"))
            for key, value in PROFILE_DEFAULTS.get(profile, {}).items():
                data.setdefault(key, value)
        return data

    @field_validator("root_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> StackConfig:
        """The settings of a named profile: its defaults, then the environment, then `overrides`."""
        return cls(profile=profile, **overrides)

    @property
    def stack_dir(self) -> Path:
        return self.root_dir

    @property
    def s3_ports(self) -> dict[str, int]:
        """Every SeaweedFS listener, by role."""
        return {role: self.s3_port + offset for role, offset in S3_PORT_OFFSETS.items()}

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"{self.host}:{self.s3_port}"

    @property
    def postgres_dsn(self) -> str:
        return f"postgresql://{self.pg_user}@{self.host}:{self.pg_port}/{self.pg_database}"

    def service_env(self) -> dict[str, str]:
        """What the Cairn services need to reach this stack."""
        return {
            "CAIRN_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "CAIRN_POSTGRES_DSN": self.postgres_dsn,
            "CAIRN_S3_ENDPOINT": self.s3_endpoint,
            "CAIRN_S3_ACCESS_KEY": self.s3_access_key,
            "CAIRN_S3_SECRET_KEY": self.s3_secret_key,
            "CAIRN_S3_SECURE": "false",
            "CAIRN_MASTER_KEY": self.master_key,
        }

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    def metrics_port(self, service: str, member: int = 1) -> int:
        """The /metrics port of a service run against this stack (its CAIRN_METRICS_PORT), or of its
        member `member` (see `REPLICA_PORT_STRIDE`)."""
        member_name(service, member)  # checks the number
        try:
            offset = SERVICE_METRICS_OFFSETS[service]
        except KeyError:
            known = ", ".join(SERVICE_METRICS_OFFSETS)
            raise KeyError(f"no metrics port for service {service!r}; known: {known}") from None
        return self.metrics_port_base + (member - 1) * REPLICA_PORT_STRIDE + offset

    def metrics_ports(self) -> dict[str, int]:
        """Every service's /metrics port, by service name."""
        return {service: self.metrics_port(service) for service in SERVICE_METRICS_OFFSETS}

    def service_metrics_env(self, service: str, member: int = 1) -> dict[str, str]:
        """What one service process (member `member` of its group) needs to expose /metrics on its port."""
        port = self.metrics_port(service, member)
        return {"CAIRN_METRICS_PORT": str(port), "CAIRN_METRICS_HOST": self.host}


LOCAL_CONSUMER_ENV = {
    # Tansu makes a joining member wait session_timeout/2; real Kafka rejects < 6000, so only locally
    "CAIRN_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "CAIRN_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    # Tansu holds a fetch for the whole wait even when records arrive: keep it short locally
    "CAIRN_KAFKA_FETCH_MAX_WAIT_MS": "25",
    # ... and long once a consumer has been quiet, so an idle stack does not spin (cairn_bus.fetching)
    "CAIRN_KAFKA_FETCH_MAX_WAIT_IDLE_MS": "1000",
    "CAIRN_KAFKA_FETCH_IDLE_AFTER_MS": "10000",
}
"""Consumer settings that make group joins and fetches fast on the local broker (never for Kafka)."""


def setting_env_name(field: str) -> str:
    """The environment variable that sets `field`, for error messages."""
    return f"{ENV_PREFIX}{field.upper()}"


def is_root() -> bool:
    return os.geteuid() == 0
