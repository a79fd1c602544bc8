"""``scripts/demo.py`` as a module, for the tests that run the demo or its DAG runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
_NAME = "mltrade_demo"


def load_demo() -> ModuleType:
    """The demo module, loaded once per process (registered, as its dataclasses require)."""
    if _NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_NAME, DEMO)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_NAME]
