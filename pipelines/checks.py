"""Start-up checks (`mltrade check`): refuse to start on bad configuration.

:func:`preflight` runs the checks that need no network (every setting parses; the settings
that go together are all there) and raises :class:`ConfigurationError` naming the setting and
what to do. :func:`run_checks` (``mltrade check``) adds the reachability of the warehouse
and of the MLflow server, and reports every check instead of stopping at the first.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from pipelines.config import Settings, get_settings
from pipelines.errors import ConfigurationError, MltradeError

CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def static_problems(settings: Settings) -> list[str]:
    """What is wrong with settings that parse but do not go together (empty: nothing)."""
    problems = []
    keys = (
        settings.alpaca_api_key.get_secret_value()
        and settings.alpaca_secret_key.get_secret_value()
    )
    for name, value in (("BROKER", settings.broker), ("DATA_SOURCE", settings.data_source)):
        if value == "alpaca" and not keys:
            problems.append(
                f"{name}=alpaca needs ALPACA_API_KEY and ALPACA_SECRET_KEY: set both in the "
                f"environment or .env (never commit them), or use {name}="
                + ("simulated" if name == "BROKER" else "sample")
            )
    if settings.trading_mode == "live" and settings.broker != "alpaca":
        problems.append("TRADING_MODE=live needs BROKER=alpaca; the simulated broker is paper only")
    for name, url in (
        ("WAREHOUSE_URL", settings.warehouse_url),
        ("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
        ("PUSHGATEWAY_URL", settings.pushgateway_url),
        ("GRAFANA_URL", settings.grafana_url),
        ("MLFLOW_UI_URL", settings.mlflow_ui_url),
    ):
        if url and not _well_formed(url):
            problems.append(
                f"{name}={_hide(url)!r} is not a URL like scheme://host[:port][/path]: fix it "
                "or leave it empty"
            )
    if settings.warehouse_url and not settings.warehouse_url.startswith(("postgresql", "postgres")):
        problems.append(
            f"WAREHOUSE_URL must be a PostgreSQL URL (postgresql://user:password@host:5432/db), "
            f"got scheme {urlsplit(settings.warehouse_url).scheme!r}"
        )
    return problems


def _well_formed(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return False
    if parts.scheme in ("sqlite", "file"):
        return True
    return bool(parts.scheme and (parts.netloc or parts.path))


def _hide(url: str) -> str:
    from pipelines.monitoring.logging import Redactor

    return Redactor().text(url)


def preflight() -> Settings:
    """The settings, or :class:`ConfigurationError` naming every problem and what to do."""
    settings = get_settings()  # raises ConfigurationError naming a malformed setting
    problems = static_problems(settings)
    if problems:
        raise ConfigurationError("refusing to start: " + "; ".join(problems))
    return settings


def check_warehouse(settings: Settings) -> CheckResult:
    """Connect (timeout :data:`CONNECT_TIMEOUT_S`) and report pending migrations."""
    if not settings.warehouse_url:
        return CheckResult(
            "warehouse", True, f"embedded PostgreSQL under {settings.home / 'postgres'} "
            "(started on first use)"
        )
    from pipelines.warehouse.engine import warehouse_url

    url = warehouse_url(settings)
    engine = sa.create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    safe = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return CheckResult(
            "warehouse", False, f"cannot reach {safe}: {_hide(reason)}. Check WAREHOUSE_URL "
            "(host, port, user, password, database) or unset it to use the embedded PostgreSQL"
        )
    finally:
        engine.dispose()
    return CheckResult("warehouse", True, f"reached {safe}")


def check_mlflow(settings: Settings) -> CheckResult:
    """An HTTP tracking server answers ``/health``; a local store's folder is writable."""
    uri = settings.mlflow_uri
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(health, timeout=CONNECT_TIMEOUT_S) as response:
                status = response.status
        except (urllib.error.URLError, OSError) as exc:
            return CheckResult(
                "mlflow", False, f"cannot reach the MLflow server at {_hide(uri)} ({exc}). "
                "Start it, fix MLFLOW_TRACKING_URI, or leave it empty for the local store"
            )
        return CheckResult("mlflow", status == 200, f"{_hide(health)} answered {status}")
    if scheme == "sqlite":
        folder = Path(uri.removeprefix("sqlite:///")).parent
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # created on first use under the nearest existing folder
        ok = _writable(probe)
        return CheckResult(
            "mlflow", ok, f"local store in {folder}" + ("" if ok else " is not writable: "
                                                         "fix MLTRADE_HOME or its permissions")
        )
    return CheckResult("mlflow", True, f"tracking URI {_hide(uri)} (not checked)")


def _writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK)


def check_kill_switch(settings: Settings) -> CheckResult:
    """The persisted kill switch's state (ON is reported, not a failure: it is deliberate)."""
    from pipelines.controls import kill_switch_status
    from pipelines.warehouse import embedded
    from pipelines.warehouse.engine import warehouse_url

    if not settings.warehouse_url and not embedded.running(settings.home / "postgres"):
        return CheckResult(
            "kill switch", True, "not read: the embedded PostgreSQL is not running "
            "(`mltrade kill-switch status` starts it and reads the state)"
        )
    try:
        engine = sa.create_engine(
            warehouse_url(settings), connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
        )
        try:
            enabled, reason, updated = kill_switch_status(engine)
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, MltradeError, OSError) as exc:
        reason_text = str(getattr(exc, "orig", exc)).strip().splitlines() or [type(exc).__name__]
        return CheckResult(
            "kill switch", False, f"state unknown: {_hide(reason_text[0])}. Fix the warehouse "
            "check above; `mltrade kill-switch on --reason …` needs only WAREHOUSE_URL"
        )
    if enabled:
        return CheckResult(
            "kill switch", True, f"ON since {updated} ({_hide(reason or '')}): no order is sent; "
            "`mltrade kill-switch off` releases it"
        )
    return CheckResult("kill switch", True, "off")


def run_checks() -> list[CheckResult]:
    """Every check, in order; a setting that does not parse stops at the first (the kill
    switch is still reported, from the warehouse settings alone)."""
    try:
        settings = get_settings()
    except MltradeError as exc:
        from pipelines.config import warehouse_settings

        results = [CheckResult("settings", False, _hide(str(exc)))]
        try:
            results.append(check_kill_switch(warehouse_settings()))
        except MltradeError as inner:
            results.append(CheckResult("kill switch", False, f"state unknown: {_hide(str(inner))}"))
        return results
    problems = static_problems(settings)
    results = [CheckResult("settings", not problems, "; ".join(problems) or "all settings parse")]
    results.append(
        CheckResult(
            "trading mode", True,
            f"{settings.trading_mode} on broker {settings.broker}"
            + (" (LIVE, confirmed)" if settings.trading_mode == "live" else ""),
        )
    )
    results.append(check_warehouse(settings))
    if results[-1].ok:
        results.append(check_kill_switch(settings))
    else:  # one connection timeout is enough
        results.append(CheckResult("kill switch", False, "state unknown: warehouse unreachable"))
    results.append(check_mlflow(settings))
    return results
