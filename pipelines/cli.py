"""The ``mltrade`` command line: one command per stage, plus ``db`` and ``demo``.

Every command calls the same :mod:`pipelines.jobs` function the Airflow tasks call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from typing import Annotated

import typer
from rich.console import Console

from pipelines import jobs
from pipelines.config import PROJECT_ROOT, get_settings
from pipelines.errors import MltradeError

app = typer.Typer(
    help="mltrade: an Airflow-orchestrated ML trading pipeline.", no_args_is_help=True
)
db_app = typer.Typer(help="The warehouse database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
models_app = typer.Typer(help="Registered models: promotion and rollback.", no_args_is_help=True)
app.add_typer(models_app, name="models")
orders_app = typer.Typer(help="The orders ledger: dead letters and retries.", no_args_is_help=True)
app.add_typer(orders_app, name="orders")
console = Console()

DateOpt = Annotated[str | None, typer.Option(help="YYYY-MM-DD")]


def _optional_date(value: str | None, name: str) -> date | None:
    return None if value is None else _date(value, name)


def _date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{name} must be a date like 2010-08-20, got {value!r}") from None


def _cli_run_id(stage: str) -> str:
    return f"cli__{stage}__{os.getpid()}"


def _show(result: object) -> None:
    console.print_json(json.dumps(result, default=str))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations from sql/ (a no-op when up to date)."""
    from pipelines.warehouse import get_engine
    from pipelines.warehouse.migrate import upgrade

    applied = upgrade(get_engine())
    console.print(f"applied migrations: {applied}" if applied else "warehouse schema is up to date")


@db_app.command("url")
def db_url() -> None:
    """Print the warehouse URL (starting the embedded server if needed), password hidden."""
    from pipelines.warehouse import get_engine

    console.print(get_engine().url.render_as_string(hide_password=True))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from pipelines.warehouse import embedded

    stopped = embedded.stop(get_settings().home / "postgres")
    console.print(
        "embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running"
    )


@app.command()
def ingest(
    start: DateOpt = None,
    end: DateOpt = None,
    symbols: Annotated[str | None, typer.Option(help="comma-separated; default: UNIVERSE")] = None,
    source: Annotated[str | None, typer.Option(help="sample | yahoo | alpaca")] = None,
) -> None:
    """Collect, validate and load daily bars for the sessions from START to END."""
    if start is None or end is None:
        raise typer.BadParameter("--start and --end are required")
    first, last = _date(start, "--start"), _date(end, "--end")
    if source:
        os.environ["DATA_SOURCE"] = source
        get_settings.cache_clear()
    wanted = [s.strip().upper() for s in symbols.split(",")] if symbols else None
    with console.status(f"ingesting {first} → {last}"):
        _show(jobs.ingest_bars(first, last, _cli_run_id("ingest"), wanted))


@app.command()
def features(start: DateOpt = None, end: DateOpt = None) -> None:
    """(Re)compute features from START to END (default: every session with bars)."""
    with console.status("computing features"):
        _show(
            jobs.build_features(
                _optional_date(start, "--start"),
                _optional_date(end, "--end"),
                _cli_run_id("features"),
            )
        )


@app.command()
def train(as_of: Annotated[str, typer.Option(help="train on data through this date")]) -> None:
    """Train and register a model (@challenger; @champion if it is the first)."""
    with console.status("training"):
        _show(jobs.train_model(_date(as_of, "--as-of"), _cli_run_id("train")))


@models_app.command("promote")
def models_promote(
    as_of: DateOpt = None,
    version: Annotated[str | None, typer.Option(help="promote this version, no gate")] = None,
) -> None:
    """Promote @challenger if it beats @champion on the same window (or --version, by hand)."""
    _show(jobs.promote_model(_optional_date(as_of, "--as-of"), version))


@models_app.command("rollback")
def models_rollback() -> None:
    """Point @champion back at @previous_champion."""
    _show(jobs.rollback_model())


@app.command()
def rebalance(session: Annotated[str, typer.Option("--date", help="session to trade")]) -> None:
    """The pre-market rebalance for one session: predict, optimize, gate, submit, reconcile."""
    day = _date(session, "--date")
    with typer.progressbar(length=len(jobs.REBALANCE_STEPS), label=f"rebalance {day}") as bar:
        result = jobs.rebalance(day, _cli_run_id("rebalance"), on_step=lambda _: bar.update(1))
    _show(result)


@app.command()
def reconcile() -> None:
    """Compare the orders ledger with the broker; report fills."""
    _show(jobs.reconcile())


@orders_app.command("dead-letter")
def orders_dead_letter(
    all_: Annotated[bool, typer.Option("--all", help="include resolved ones")] = False,
) -> None:
    """Orders the broker refused for good (buying power, bad parameters), with the error."""
    _show(jobs.dead_letters(all_))


@orders_app.command("retry")
def orders_retry(
    client_order_id: Annotated[str, typer.Argument(help="from `mltrade orders dead-letter`")],
) -> None:
    """Send a dead-lettered order again; the broker is asked for its id first (exactly once)."""
    _show(jobs.retry_order(client_order_id))


@app.command("kill-switch")
def kill_switch(
    action: Annotated[str, typer.Argument(help="on | off | status")],
    reason: Annotated[str, typer.Option(help="why (recorded)")] = "set from the CLI",
) -> None:
    """Engage or release the persisted kill switch that every order task checks."""
    from pipelines.risk.kill_switch import kill_switch_status, set_kill_switch

    engine = jobs.warehouse()
    if action in ("on", "off"):
        set_kill_switch(engine, action == "on", reason)
    elif action != "status":
        raise typer.BadParameter("action must be on, off or status")
    enabled, why, updated = kill_switch_status(engine)
    console.print(
        f"kill switch is {'ON' if enabled else 'off'}" + (f" ({why}, {updated})" if why else "")
    )


@app.command()
def summary(as_of: DateOpt = None) -> None:
    """Cash, positions, equity and P&L at a session's close."""
    _show(jobs.portfolio_summary(_optional_date(as_of, "--as-of") or date.today()))


@app.command()
def demo() -> None:
    """Run the whole pipeline through Airflow on the offline sample data (see README)."""
    script = PROJECT_ROOT / "scripts" / "demo.py"
    raise typer.Exit(subprocess.call([sys.executable, str(script)]))


def main() -> None:
    try:
        app()
    except MltradeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
