"""What each service really consumes and publishes, read from the routers the services run."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "cairn.services"


@dataclass(frozen=True)
class ServiceContract:
    """A service's consumed and produced (topic, event type) pairs."""

    service: str
    consumes: frozenset[tuple[str, str]]
    produces: frozenset[tuple[str, str]]


def service_modules() -> dict[str, str]:
    """Installed services: name -> the package run with `python -m` (from the `cairn.services` entry
    points; nothing is imported)."""
    return {ep.name: ep.value.split(":")[0].split(".")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}


def service_routers() -> dict[str, Any]:
    """Every installed service's router, from the `cairn.services` entry points, by service name."""
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def service_contracts() -> dict[str, ServiceContract]:
    """Every installed service's contract, by service name."""
    return {
        name: ServiceContract(name, router.consumes(), router.produces())
        for name, router in service_routers().items()
    }
