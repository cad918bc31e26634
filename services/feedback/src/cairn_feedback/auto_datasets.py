"""Dataset versions built without an operator: the feedback service's dataset policies at work.

With `CAIRN_DATASET_POLICY_DIR` set, every dataset that has a policy file there (`<dataset>.yaml`,
`domain.dataset_policy.DatasetPolicy`) is rebuilt once stored feedback has been quiet for the policy's
`quiet_s`, when its rules select enough rows and enough new ones; the version is published as
`cairn.dataset.published.v1` like one `cairn datasets build` makes, and the tuner's policy takes it from
there. A check also runs at start, so feedback that arrived before a restart is not left waiting. Two
replicas building at once make one version (the repository's per-dataset lock, `min_new_rows`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cairn_bus import Publisher
from cairn_bus.objects import ObjectStore
from cairn_bus.policy_files import load_policy_file
from cairn_feedback.domain.dataset_policy import DatasetPolicy
from cairn_feedback.domain.errors import EmptySelectionError
from cairn_feedback.domain.rules import parse_rules
from cairn_observability import get_logger

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring
    from cairn_feedback.ports import Repository

__all__ = ["DatasetAutoBuilder", "load_dataset_policies", "policy_build"]

log = get_logger("cairn.feedback.auto_datasets")

RETRY_S = 60.0
"""When a build fails for another reason than too few rows (S3 or the broker down), it is tried again
after this long."""


def load_dataset_policies(folder: Path) -> list[DatasetPolicy]:
    """Every `*.yaml` of the folder as a dataset policy; raises PolicyFileError naming the file and field
    at fault, FileNotFoundError when the folder does not exist."""
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset policy folder {folder} does not exist")
    return [load_policy_file(path, DatasetPolicy) for path in sorted(folder.glob("*.yaml"))]


class DatasetAutoBuilder:
    """Builds each policy's dataset once feedback has been quiet for the policy's `quiet_s`.

    `feedback_arrived()` (from the handler, cheap: no I/O) pushes every policy's build time back;
    `run()` sleeps until the earliest one and calls `build(policy)`, which returns True when it made a
    version and raises EmptySelectionError when the rules select too few (new) rows.
    """

    def __init__(
        self,
        policies: list[DatasetPolicy],
        build: Callable[[DatasetPolicy], Awaitable[bool]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policies = {p.name: p for p in policies}
        self._build = build
        self._clock = clock
        self._due: dict[str, float] = {}
        self._wake = asyncio.Event()
        self.built = 0
        """Versions made since start (tests and logs)."""

    def feedback_arrived(self) -> None:
        """New feedback was stored: every dataset is built `quiet_s` after the last of a burst."""
        now = self._clock()
        for policy in self.policies.values():
            self._due[policy.name] = now + policy.quiet_s
        self._wake.set()

    def due_in(self, dataset: str) -> float | None:
        """Seconds until `dataset` is built, None when nothing is waiting."""
        at = self._due.get(dataset)
        return None if at is None else max(0.0, at - self._clock())

    async def run(self) -> None:
        """Build what is due, forever (cancelled with the service); starts with a check of every policy."""
        self.feedback_arrived()
        while True:
            if not self._due:
                await self._wake.wait()
                self._wake.clear()
                continue
            name, at = min(self._due.items(), key=lambda item: item[1])
            delay = at - self._clock()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):  # woken early by new feedback, or the time came
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            del self._due[name]
            await self.build_now(self.policies[name])

    async def build_now(self, policy: DatasetPolicy) -> bool:
        """One build of the policy's dataset; True when a version was made. Too few rows is logged and
        waits for more feedback; any other failure is logged and retried after RETRY_S."""
        try:
            made = await self._build(policy)
        except EmptySelectionError as exc:
            log.info("dataset policy: no new version", dataset=policy.name, why=str(exc))
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("dataset policy: build failed; retrying", dataset=policy.name, error=str(exc))
            self._due.setdefault(policy.name, self._clock() + RETRY_S)
            return False
        if made:
            self.built += 1
        return made


def policy_build(
    repository: Repository,
    objects: ObjectStore,
    publisher: Publisher,
    *,
    bucket: str,
    clock: Callable[[], datetime],
    keyring: Keyring | None,
) -> Callable[[DatasetPolicy], Awaitable[bool]]:
    """A policy's build on the service's own repository, object store and publisher, as
    `cairn datasets build` with the policy's rules would make it (rows sealed with `keyring`)."""
    from cairn_feedback.adapters.code_version import code_version
    from cairn_feedback.datasets import build_dataset

    async def build(policy: DatasetPolicy) -> bool:
        built = await build_dataset(
            repository,
            objects,
            publisher,
            dataset_id=policy.name,
            rules=parse_rules(policy.rules),
            bucket=bucket,
            code_version=await asyncio.to_thread(code_version),
            heldout=policy.heldout,
            seed=policy.seed,
            min_rows=policy.min_rows,
            min_new_rows=policy.min_new_rows,
            clock=clock,
            keyring=keyring,
        )
        m = built.version.manifest
        log.info(
            "dataset policy built a version",
            dataset=m.dataset_id,
            version=m.version,
            train_rows=m.train_rows,
            heldout_rows=m.heldout_rows,
        )
        return True

    return build
