"""scripts/audit_deps.py (`make audit`): pip-audit's outcomes told apart, never a silent pass."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def audit():
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts/audit_deps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_reports_are_read_as_vulnerable_unreachable_or_audited(audit) -> None:
    """pip-audit's JSON report shapes (``-f json``) for the three outcomes."""
    vulnerable = audit.summarize({"dependencies": [
        {"name": "requests", "version": "2.19.0", "vulns": [
            {"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"]}]},
        {"name": "six", "version": "1.16.0", "vulns": []},
    ], "fixes": []})
    assert vulnerable.vulnerable == ["requests 2.19.0: PYSEC-2018-28 (fix: 2.20.0)"]
    assert vulnerable.audited == 2 and not vulnerable.unreachable

    unreachable = audit.summarize({"dependencies": [
        {"name": "six", "skip_reason":
         "Dependency not found on PyPI and could not be audited: six (1.16.0)"},
    ], "fixes": []})
    assert unreachable.unreachable and unreachable.audited == 0 and not unreachable.vulnerable

    partial = audit.summarize({"dependencies": [
        {"name": "six", "version": "1.16.0", "vulns": []},
        {"name": "private-pkg", "skip_reason":
         "Dependency not found on PyPI and could not be audited: private-pkg (1.0)"},
    ], "fixes": []})
    assert not partial.unreachable and partial.audited == 1 and len(partial.skipped) == 1


def test_a_real_audit_says_what_it_did(audit, tmp_path, capsys) -> None:
    """pip-audit for real on a known-vulnerable pin: where the service answers it fails on the
    vulnerability; where it cannot be reached (as here) it says NOT AUDITED and exits 0, or 1
    when the service is required. Either way the output states which it was."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.19.0\n")  # CVE-2018-18074, fixed in 2.20.0
    code = audit.main([str(requirements), "--timeout", "10"])
    out = capsys.readouterr().out
    if "NOT AUDITED" in out:
        assert code == 0
        assert audit.main([str(requirements), "--timeout", "10", "--require-service"]) == 1
    else:
        assert code == 1 and "requests 2.19.0" in out, out
