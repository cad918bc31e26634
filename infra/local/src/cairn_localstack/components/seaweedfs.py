"""SeaweedFS (`weed mini`): the S3 object store, every listener pinned to loopback."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio

from .._util import clean_env, socket_dir
from ..binaries import weed_binary
from ..config import setting_env_name
from .base import Component, LaunchSpec, PortSpec


def minio_client(endpoint: str, access_key: str, secret_key: str, timeout: float = 3.0) -> Any:
    """A minio client that fails fast (no retries) — for health checks."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=urllib3.Retry(total=0)
    )
    return Minio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=False,
        region="us-east-1",
        http_client=http,
    )


class SeaweedFS(Component):
    name = "s3"
    start_timeout = 60.0
    stop_timeout = 15.0

    @property
    def port(self) -> int:
        return self.config.s3_port

    def ports(self) -> list[PortSpec]:
        hint = "SeaweedFS listens on that port and the next 8, plus that port + 10008"
        setting = setting_env_name("s3_port")
        return [PortSpec(role, port, setting, hint) for role, port in self.config.s3_ports.items()]

    @property
    def identities_file(self) -> Path:
        return self.home / "s3.json"

    @property
    def sockets(self) -> Path:
        return socket_dir(self.home, str(self.config.stack_dir), "filer.sock")

    def prepare(self) -> dict[str, float]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(parents=True, exist_ok=True)
        for sock in ("filer.sock", "s3.sock"):  # left behind by a killed process
            (self.sockets / sock).unlink(missing_ok=True)
        identities = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [
                        {"accessKey": self.config.s3_access_key, "secretKey": self.config.s3_secret_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        fd = os.open(self.identities_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(identities, out)
        return {}

    def launch(self) -> LaunchSpec:
        p = self.config.s3_ports
        host = self.config.host
        argv = [
            str(weed_binary(self.config.stack_dir / "bin")),
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={host}",
            f"-ip.bind={host}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.grpc']}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin.grpc']}",
            "-master.telemetry=false",
            f"-s3.config={self.identities_file}",
            f"-filer.localSocket={self.sockets / 'filer.sock'}",
            f"-s3.localSocket={self.sockets / 's3.sock'}",
        ]
        env = clean_env(drop=("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL"), drop_prefixes=("AWS_",))
        keys = (self.config.s3_access_key, self.config.s3_secret_key)
        return LaunchSpec(argv=argv, env=env, cwd=self.home, settings=keys)

    def client(self) -> Any:
        c = self.config
        return minio_client(c.s3_endpoint, c.s3_access_key, c.s3_secret_key)

    async def probe(self) -> None:
        await asyncio.to_thread(self.client().list_buckets)

    async def bootstrap(self) -> None:
        def make_bucket() -> None:
            client = self.client()
            if not client.bucket_exists(self.config.broker_bucket):
                client.make_bucket(self.config.broker_bucket)

        await asyncio.to_thread(make_bucket)
