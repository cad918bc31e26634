"""Tansu: the Kafka-protocol broker, storing in memory or in a SeaweedFS bucket (`s3://`)."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

from .._util import clean_env
from ..binaries import tansu_binary
from ..config import setting_env_name
from ..errors import StackError
from .base import Component, LaunchSpec, PortSpec

#: Environment variables Tansu reads as defaults of its flags: never inherited from the caller.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
)


class Tansu(Component):
    name = "broker"
    start_timeout = 30.0
    stop_timeout = 10.0
    cluster_id = "cairn"

    @property
    def port(self) -> int:
        return self.config.kafka_port

    def ports(self) -> list[PortSpec]:
        return [PortSpec("kafka", self.config.kafka_port, setting_env_name("kafka_port"))]

    def storage(self) -> str:
        c = self.config
        if c.broker_storage == "s3":
            return f"s3://{c.broker_bucket}/ (SeaweedFS at {c.s3_endpoint})"
        return "memory (lost when the broker stops)"

    @property
    def storage_url(self) -> str:
        return (
            f"s3://{self.config.broker_bucket}/" if self.config.broker_storage == "s3" else "memory://tansu/"
        )

    def launch(self) -> LaunchSpec:
        c = self.config
        listener = f"tcp://{c.host}:{c.kafka_port}"
        argv = [str(tansu_binary(c.stack_dir / "bin")), "broker", "--cluster-id", self.cluster_id]
        argv += ["--listener-url", listener, "--advertised-listener-url", listener]
        argv += ["--storage-engine", self.storage_url]
        env = clean_env(drop=_TANSU_ENV, drop_prefixes=("AWS_", "OTEL_"))
        if c.broker_storage == "s3":
            env.update(
                AWS_ACCESS_KEY_ID=c.s3_access_key,
                AWS_SECRET_ACCESS_KEY=c.s3_secret_key,
                AWS_ENDPOINT=f"http://{c.s3_endpoint}",
                AWS_ALLOW_HTTP="true",
                AWS_DEFAULT_REGION="us-east-1",
            )
        settings = tuple(f"{k}={v}" for k, v in sorted(env.items()) if k.startswith("AWS_"))
        return LaunchSpec(argv=argv, env=env, cwd=self.home, settings=settings)

    def prepare(self) -> dict[str, float]:
        self.home.mkdir(parents=True, exist_ok=True)
        return {}

    def require_storage(self, s3_healthy: bool) -> None:
        if self.config.broker_storage == "s3" and not s3_healthy:
            raise StackError(
                "the broker stores in SeaweedFS (broker_storage=s3) but SeaweedFS is not healthy: "
                "start the whole stack (`python -m cairn_localstack up`) or use --broker-storage memory"
            )

    async def probe(self) -> None:
        # a plain TCP connect first: aiokafka logs an ERROR for every refused connection
        _, writer = await asyncio.open_connection(self.config.host, self.config.kafka_port)
        writer.close()
        await writer.wait_closed()
        # the local broker is plaintext on loopback: CAIRN_KAFKA_SECURITY_PROTOCOL (for a remote
        # cluster) must not apply here, so no cairn_bus.kafka.client_options()
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.config.kafka_bootstrap,
            request_timeout_ms=4000,
            client_id="cairn-localstack",
            security_protocol="PLAINTEXT",
        )
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()
