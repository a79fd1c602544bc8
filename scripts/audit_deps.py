"""Dependency audit of requirements.lock with pip-audit (`make audit`; GitHub CI runs it).

pip-audit asks a vulnerability service (PyPI's JSON API by default) about every pinned
package. When PyPI's API cannot be reached it does not fail: it marks each package "not found
on PyPI" and still prints "No known vulnerabilities found". This wrapper tells the outcomes
apart and says which one it was:

- vulnerabilities found: each listed, exit 1;
- service unreachable (not one package could be audited): says so, exit 0 — a skip, not a
  pass — or exit 1 with ``--require-service`` (GitHub CI, where the network exists);
- audited: how many packages were audited and which were skipped, exit 0.

A pip-audit failure that is not a network one (bad arguments, unreadable file) exits 2.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NOT_REACHED = re.compile(r"not found on PyPI", re.IGNORECASE)
_NETWORK_ERROR = re.compile(
    r"ConnectionError|NameResolutionError|Max retries exceeded|timed out|"
    r"Temporary failure in name resolution|Network is unreachable|SSLError",
    re.IGNORECASE,
)


@dataclass
class Outcome:
    """What one audit found: vulnerable packages, audited and skipped package counts."""

    vulnerable: list[str] = field(default_factory=list)  # "name version: id (fix: ...)"
    audited: int = 0
    skipped: list[str] = field(default_factory=list)  # "name: reason"
    unreachable: bool = False


def summarize(report: dict) -> Outcome:
    """Read pip-audit's JSON report (``-f json``)."""
    outcome = Outcome()
    not_reached = 0
    for dep in report.get("dependencies", []):
        reason = dep.get("skip_reason")
        if reason:
            outcome.skipped.append(f"{dep['name']}: {reason}")
            not_reached += bool(_NOT_REACHED.search(reason))
            continue
        outcome.audited += 1
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none"
            outcome.vulnerable.append(
                f"{dep['name']} {dep.get('version', '?')}: {vuln['id']} (fix: {fixes})"
            )
    outcome.unreachable = outcome.audited == 0 and not_reached > 0
    return outcome


def run_pip_audit(requirements: Path, service: str, timeout: int) -> tuple[dict | None, str]:
    """Run pip-audit on a pinned requirements file; its JSON report (None if it wrote none)
    and its stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        done = subprocess.run(
            [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps",
             "--disable-pip", "--progress-spinner", "off", "-s", service,
             "--timeout", str(timeout), "-f", "json", "-o", str(out)],
            capture_output=True, text=True,
        )
        report = json.loads(out.read_text()) if out.exists() and out.stat().st_size else None
    return report, done.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="?", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    parser.add_argument("--timeout", type=int, default=15, help="socket timeout, seconds")
    parser.add_argument("--require-service", action="store_true",
                        help="an unreachable vulnerability service is a failure (CI)")
    args = parser.parse_args(argv)

    report, stderr = run_pip_audit(args.requirements, args.service, args.timeout)
    if report is None:
        if _NETWORK_ERROR.search(stderr):
            outcome = Outcome(unreachable=True)
        else:
            print(f"audit: pip-audit failed:\n{stderr.strip()[-2000:]}", file=sys.stderr)
            return 2
    else:
        outcome = summarize(report)

    name = args.requirements.name
    if outcome.vulnerable:
        print(f"audit: {len(outcome.vulnerable)} known vulnerabilit(y/ies) in {name}:")
        for line in outcome.vulnerable:
            print(f"  {line}")
        return 1
    if outcome.unreachable:
        print(f"audit: NOT AUDITED: the {args.service} vulnerability service could not be "
              f"reached from this machine; no package of {name} was checked. Run `make audit` "
              "where it is reachable (the GitHub CI workflow does).")
        if outcome.skipped:
            print(f"audit: pip-audit said, e.g.: {outcome.skipped[0]}")
        return 1 if args.require_service else 0
    print(f"audit: no known vulnerabilities in {outcome.audited} package(s) of {name} "
          f"({args.service} service)")
    if outcome.skipped:
        print(f"audit: {len(outcome.skipped)} package(s) could not be audited:")
        for line in outcome.skipped:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
