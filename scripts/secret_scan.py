"""Secret scan of the repository's tracked files (offline; run by `make lint` and CI).

Flags what looks like a credential committed in clear: private-key blocks, AWS and Alpaca
key ids, Slack/GitHub tokens, passwords inside URLs, and assignments of non-empty literal
values to secret-looking names (``*_KEY``, ``*SECRET*``, ``*PASSWORD*``, ``*TOKEN*``).
Placeholders (``${VAR}``, empty, ``changeme``-style words) and test fixtures' obvious fakes
(values containing ``fake``/``test``/``example``/``dummy``) are allowed. Exit code 1 on a find.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Alpaca live key id": re.compile(r"\bAK[0-9A-Z]{18}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    "password in URL": re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s'\"]+:(?P<v>[^@/\s'\"${]{3,})@"),
    "secret assignment": re.compile(
        r"(?i)\b[A-Z0-9_]*(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|ROUTING_KEY)[A-Z0-9_]*\b"
        r"\s*[:=]\s*['\"]?(?P<v>[A-Za-z0-9/+=_\-]{8,})"
    ),
}
ALLOWED = re.compile(r"(?i)fake|test|example|dummy|placeholder|changeme|xxxx|redacted|\*\*\*")
_ENV_REFERENCE = re.compile(r"\$\{[^}]*\}")
# Helm values naming a Kubernetes Secret (`passwordSecretName: mltrade-redis`): a reference.
_SECRET_NAME_KEY = re.compile(r"\b[A-Za-z]*SecretName\s*:")
SKIP_SUFFIXES = {".lock", ".png", ".jpg", ".gz", ".ipynb", ".svg"}


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


def scan(paths: list[Path]) -> list[str]:
    finds = []
    for path in paths:
        if path.suffix in SKIP_SUFFIXES or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            line = _ENV_REFERENCE.sub("${}", line)  # ${VAR:-default}: taken from the env
            for name, pattern in PATTERNS.items():
                for match in pattern.finditer(line):
                    value = match.groupdict().get("v") or match.group(0)
                    if ALLOWED.search(value) or ALLOWED.search(line):
                        continue
                    if name == "secret assignment" and _SECRET_NAME_KEY.search(line):
                        continue
                    if value.isidentifier() and not any(c.isdigit() for c in value):
                        continue  # a variable name (password=password), not a literal
                    finds.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    return finds


def main() -> int:
    finds = scan(tracked_files())
    for find in finds:
        print(find)
    print(f"secret scan: {len(finds)} finding(s) in tracked files", file=sys.stderr)
    return 1 if finds else 0


if __name__ == "__main__":
    raise SystemExit(main())
