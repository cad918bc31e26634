"""`python -m cairn_localstack up|down|status|env [--profile P] [--broker-storage memory|s3] [--prometheus]`."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from .config import StackConfig
from .errors import StackError
from .stack import LocalStack


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cairn_localstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env", "restart-broker"])
    parser.add_argument("--profile", help="stack profile (default: $CAIRN_STACK_PROFILE or 'local')")
    parser.add_argument("--broker-storage", choices=["memory", "s3"], help="where the broker keeps messages")
    parser.add_argument(
        "--prometheus", action="store_true", help="with up: also run Prometheus scraping the services"
    )
    parser.add_argument("--root-dir", help="stack folder (default: <repo>/.cairn/<profile>)")
    parser.add_argument("--purge", action="store_true", help="with down: also delete the stack's data")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return parser


def config_from_args(args: argparse.Namespace) -> StackConfig:
    overrides: dict[str, Any] = {}
    if args.profile:
        overrides["profile"] = args.profile
    if args.broker_storage:
        overrides["broker_storage"] = args.broker_storage
    if args.root_dir:
        overrides["root_dir"] = args.root_dir
    if args.prometheus:
        overrides["prometheus"] = True
    return StackConfig(**overrides)


def run(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0: done / all healthy, 1: error or unhealthy)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    stack = LocalStack(config_from_args(args))
    try:
        if args.command == "up":
            status = stack.up()
            print(status.format())
            print(f"environment: . {stack.env_file}")
            return 0 if status.healthy else 1
        if args.command == "down":
            status = stack.down(purge=args.purge)
            print(status.format())
            return 0 if status.stopped else 1
        if args.command == "status":
            status = stack.status()
            print(status.format())
            return 0 if status.healthy else 1
        if args.command == "restart-broker":
            broker = stack.restart_broker()
            print(f"broker restarted in {broker.start_ms:.0f} ms (pid {broker.pid})")
            return 0 if broker.healthy else 1
        for key, value in stack.env().items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def main() -> None:
    sys.exit(run())
