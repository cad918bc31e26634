"""The stack's servers: SeaweedFS (S3), PostgreSQL + pgvector, Tansu (Kafka protocol), and Prometheus
(optional)."""

from .base import Component, LaunchSpec, PortSpec, StartReport
from .postgres import Postgres
from .prometheus import Prometheus
from .seaweedfs import SeaweedFS
from .tansu import Tansu

__all__ = [
    "Component",
    "LaunchSpec",
    "PortSpec",
    "Postgres",
    "Prometheus",
    "SeaweedFS",
    "StartReport",
    "Tansu",
]
