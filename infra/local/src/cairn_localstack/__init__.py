"""The embedded local stack, run as plain processes: Tansu (Kafka protocol), PostgreSQL with pgvector,
SeaweedFS (S3)."""

from .config import StackConfig
from .errors import BinaryNotFoundError, HealthCheckError, PortInUseError, StackError
from .process import ProcessError, ProcessInfo, ProcessManager
from .stack import ComponentStatus, LocalStack, StackStatus

__all__ = [
    "BinaryNotFoundError",
    "ComponentStatus",
    "HealthCheckError",
    "LocalStack",
    "PortInUseError",
    "ProcessError",
    "ProcessInfo",
    "ProcessManager",
    "StackConfig",
    "StackError",
    "StackStatus",
]
