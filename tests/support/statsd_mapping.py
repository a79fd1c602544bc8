"""What a statsd_exporter mapping file makes of a statsd metric name, for tests.

Follows the exporter's documented rules (README "Metric Mapping and Configuration"): glob rules
first, in file order, where ``*`` stands for one whole dot-separated component; then regex rules
in file order; ``$n``/``${n}`` take the n-th capture; ``action: drop`` drops; a name no rule
matches keeps the default name (non-alphanumerics to ``_``, no labels). It lets the tests check
the mapping against every name in Airflow's metric registry; the real exporter
(tests/integration/test_airflow_statsd.py) remains the judge where it is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_REF = re.compile(r"\$\{?(\d+)\}?")


@dataclass(frozen=True)
class Series:
    """The Prometheus series a statsd name becomes; ``rule`` is None for the default name."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    dropped: bool = False
    rule: str | None = None


def _expand(template: str, groups: tuple[str, ...]) -> str:
    return _REF.sub(lambda m: groups[int(m.group(1)) - 1], template)


def _glob(pattern: str) -> re.Pattern[str]:
    parts = ["([^.]+)" if part == "*" else re.escape(part) for part in pattern.split(".")]
    return re.compile(r"\.".join(parts) + "$")


class Mapping:
    """A parsed mapping file."""

    def __init__(self, path: Path) -> None:
        config = yaml.safe_load(path.read_text())
        default_type = (config.get("defaults") or {}).get("match_type", "glob")
        self.rules = config["mappings"]
        self.globs = [r for r in self.rules if r.get("match_type", default_type) == "glob"]
        self.regexes = [r for r in self.rules if r.get("match_type", default_type) == "regex"]

    def map(self, statsd_name: str) -> Series:
        for rule in self.globs:
            if m := _glob(rule["match"]).match(statsd_name):
                return self._series(rule, m.groups())
        for rule in self.regexes:
            if m := re.search(rule["match"], statsd_name):
                return self._series(rule, m.groups())
        return Series(re.sub(r"[^a-zA-Z0-9_]", "_", statsd_name))

    @staticmethod
    def _series(rule: dict, groups: tuple[str, ...]) -> Series:
        labels = {k: _expand(str(v), groups) for k, v in (rule.get("labels") or {}).items()}
        return Series(_expand(rule["name"], groups), labels, rule.get("action") == "drop",
                      rule["match"])
