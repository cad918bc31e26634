"""Loading a shared test suite module by path.

Behaviour suites live beside the tests that run them against each backend; pytest's importlib
import mode does not let one test file import another, so the runners load the suite by path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_suite(path: Path | str, name: str | None = None) -> ModuleType:
    """The module at `path`, loaded once per process (under `name`, default derived from the path)."""
    path = Path(path).resolve()
    name = name or "cairn_suite_" + "_".join(path.with_suffix("").parts[-3:]).replace("-", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load a test suite from {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
