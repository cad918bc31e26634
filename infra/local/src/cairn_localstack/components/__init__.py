"""The stack's servers: SeaweedFS (S3), PostgreSQL + pgvector, Tansu (Kafka protocol)."""

from .base import Component, LaunchSpec, PortSpec, StartReport
from .postgres import Postgres
from .seaweedfs import SeaweedFS
from .tansu import Tansu

__all__ = ["Component", "LaunchSpec", "PortSpec", "Postgres", "SeaweedFS", "StartReport", "Tansu"]
