"""The GitHub Actions workflows (.github/workflows/), checked offline with actionlint (and
ShellCheck on their `run:` scripts), plus what each must do: CI runs every gate, CD pushes the
image to GHCR and deploys only through a gated environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: `make install` (dev extra)")
    return path


def _actionlint(*files: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [_tool("actionlint"), "-color=false", "-shellcheck", _tool("shellcheck"),
         *map(str, files)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )


def _load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _steps(job: dict) -> list[dict]:
    return job["steps"]


def test_workflows_pass_actionlint_and_shellcheck() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "cd.yml"}
    result = _actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path) -> None:
    """The linter is live: a misspelt action input, an undefined job output and an unquoted
    shell variable (ShellCheck) fail."""
    broken = (WORKFLOWS / "ci.yml").read_text().replace("python-version:", "python-versoin:")
    broken = broken.replace("run: make docs", "run: make docs ${{ needs.nope.outputs.x }}")
    broken = broken.replace("run: make lint", "run: make lint $EXTRA")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(broken)
    result = _actionlint(workflows / "ci.yml")
    assert result.returncode == 1
    for finding in ("python-versoin", "needs.nope", "SC2086"):
        assert finding in result.stdout, result.stdout


def test_every_action_is_pinned_to_a_version() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for ref in re.findall(r"uses:\s*(\S+)", path.read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+(\.\d+){0,2}", ref), f"{path.name}: {ref}"


def test_ci_runs_every_gate_on_push_and_pull_request() -> None:
    ci = _load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    (job,) = ci["jobs"].values()
    steps = _steps(job)
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    (python,) = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert python["with"]["python-version"] == "3.11" and python["with"]["cache"] == "pip"
    assert any(u.startswith("actions/cache@") for u in uses)
    runs = [s.get("run", "") for s in steps]
    for command in ("make lint", "bash .ci/run", "make docs",
                    "make audit AUDIT_FLAGS=--require-service"):
        assert command in runs, command
    makefile = (ROOT / "Makefile").read_text()
    for target in ("install", "lint", "docs", "audit", "test", "secret-scan"):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), target
    assert "secret-scan" in re.search(r"^lint:.*$", makefile, flags=re.MULTILINE).group(0)
    assert "ruff" in makefile and "mypy" in makefile and "--cov-fail-under" in makefile


def test_cd_pushes_the_image_to_ghcr_and_gates_the_deploy() -> None:
    cd = _load("cd.yml")
    assert cd["on"]["push"]["branches"] == ["main"] and cd["on"]["push"]["tags"]
    image, deploy = cd["jobs"]["image"], cd["jobs"]["deploy"]
    assert image["permissions"]["packages"] == "write"
    assert cd["env"]["IMAGE"].startswith("ghcr.io/") and cd["env"]["IMAGE"].endswith("/mltrade")
    (build,) = [s for s in _steps(image)
                if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["context"] == "." and build["with"]["push"] is True
    assert (ROOT / "Dockerfile").read_text().count("FROM ") >= 2  # multi-stage
    (login,) = [s for s in _steps(image) if s.get("uses", "").startswith("docker/login-action@")]
    assert login["with"]["registry"] == "ghcr.io"
    # Deploy: after the image, only through a protected environment, on a tag or by hand.
    assert deploy["needs"] == "image" and deploy["environment"] == "production"
    assert "refs/tags/v" in deploy["if"] and "workflow_dispatch" in deploy["if"]
    script = "\n".join(s.get("run", "") for s in _steps(deploy))
    assert "deploy/kubernetes/airflow-values.yaml" in script
    assert "LoadRestrictionsNone" in script and "../../base" in script
    assert "secrets." not in script  # secrets reach scripts through env:, never inline
