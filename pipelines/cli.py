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
from typer._click import exceptions as click_errors  # typer vendors its own click

from pipelines import jobs
from pipelines.config import PROJECT_ROOT, get_settings
from pipelines.monitoring.logging import redact

app = typer.Typer(
    help="mltrade: an Airflow-orchestrated ML trading pipeline.",
    no_args_is_help=True,
    # main() is the error boundary: one line per failure, the traceback only with --debug.
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The warehouse database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
models_app = typer.Typer(
    help="Registered models: evaluation, promotion and rollback.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
metrics_app = typer.Typer(help="Prometheus metrics.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")
orders_app = typer.Typer(help="The orders ledger: dead letters and retries.", no_args_is_help=True)
app.add_typer(orders_app, name="orders")
console = Console()

DateOpt = Annotated[str | None, typer.Option(help="YYYY-MM-DD")]

# Commands that must run with a bad configuration: they report on it, or (the kill switch)
# must stop trading whatever else is misconfigured.
_NO_PREFLIGHT = {"check", "demo", "kill-switch", None}


_state: dict[str, object] = {"debug": False, "signal": None}


@app.callback()
def _preflight(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="on failure, print the full traceback too")
    ] = False,
) -> None:
    """Refuse to start on bad configuration, naming the setting, before touching any data.

    Also binds the command's ``run_id`` (as the stages name CLI runs) to every log line.
    """
    _state["debug"] = debug
    if ctx.invoked_subcommand and not ctx.resilient_parsing:
        import structlog

        structlog.contextvars.bind_contextvars(run_id=_cli_run_id(ctx.invoked_subcommand))
    if ctx.invoked_subcommand not in _NO_PREFLIGHT and not ctx.resilient_parsing:
        from pipelines.checks import preflight

        preflight()


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
    """Print a result as JSON, through the redaction boundary (CLI output leaves the process)."""
    console.print_json(redact(json.dumps(result, default=str)))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations from sql/ (a no-op when up to date)."""
    from pipelines.warehouse import get_engine
    from pipelines.warehouse.migrate import upgrade

    applied = upgrade(get_engine())
    console.print(f"applied migrations: {applied}" if applied else "warehouse schema is up to date")


@db_app.command("url")
def db_url(
    database: Annotated[str | None, typer.Option(
        help="another database on the warehouse's server, created if missing "
             "(`make airflow` keeps Airflow's metadata in `airflow`)")] = None,
    show_password: Annotated[bool, typer.Option(
        help="print the password too, for a variable such as AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    )] = False,
) -> None:
    """Print the warehouse URL, or another database's on its server (starting the embedded
    server if needed); the password hidden unless --show-password."""
    import sqlalchemy as sa

    from pipelines.warehouse.engine import database_url, warehouse_url

    url = sa.engine.make_url(database_url(database) if database else warehouse_url())
    text = url.render_as_string(hide_password=not show_password)
    # Plain echo: rich would wrap a long URL, and a shell reads this line back. Without
    # --show-password a password anywhere (``?password=``, a query's DSN) is masked too.
    typer.echo(text if show_password else redact(text))


@db_app.command("retention")
def db_retention(
    as_of: Annotated[str, typer.Option(help="the session retention counts back from")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be dropped; drop nothing")
    ] = False,
) -> None:
    """Drop bar partitions (chunks) wholly older than BARS_RETENTION_DAYS before AS_OF.

    With BARS_RETENTION_DAYS and MINUTE_BARS_RETENTION_DAYS unset (the default) nothing goes.
    An AS_OF beyond the newest bar plus RETENTION_AS_OF_SLACK_DAYS is refused; what goes is
    printed before it is dropped.
    """

    def announce(plan: dict) -> None:
        verb = "would drop" if dry_run else "dropping"
        for table, part in plan.items():
            typer.echo(
                f"{verb} {len(part['partitions'])} partition(s) of {table} "
                f"({part['rows']:,} rows)" + (f": {', '.join(part['partitions'])}"
                                               if part["partitions"] else "")
            )

    _show(
        jobs.apply_retention(
            _date(as_of, "--as-of"), _cli_run_id("retention"), dry_run=dry_run, on_plan=announce
        )
    )


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
    source: Annotated[
        str | None, typer.Option(help="sample | yahoo | alpaca (overrides DATA_SOURCE)")
    ] = None,
    timeframe: Annotated[
        str, typer.Option(help="1day (daily bars) | 1min (minute bars, into minute_bars)")
    ] = "1day",
) -> None:
    """Collect, validate and load daily bars for the sessions from START to END.

    Symbols are loaded in batches of INGEST_BATCH_SYMBOLS, one transaction each. With
    --timeframe 1min, one-minute bars of each session go into minute_bars (one transaction per
    session) and are reconciled with the session's daily bar.
    """
    if start is None or end is None:
        raise typer.BadParameter("--start and --end are required")
    if timeframe.lower() not in ("1day", "1min"):
        raise typer.BadParameter(f"--timeframe {timeframe!r}: use 1day or 1min")
    first, last = _date(start, "--start"), _date(end, "--end")
    if source:
        os.environ["DATA_SOURCE"] = source
        get_settings.cache_clear()
    wanted = [s.strip().upper() for s in symbols.split(",")] if symbols else None
    if timeframe.lower() == "1min":
        with console.status(f"ingest minute bars {first} → {last}"):
            _show(jobs.ingest_minute_bars(first, last, _cli_run_id("ingest"), wanted))
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"ingest {first} → {last} (batches)", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = jobs.ingest_bars(first, last, _cli_run_id("ingest"), wanted, on_batch=advance)
    _show(result)


@app.command()
def news(
    start: Annotated[str, typer.Option(help="first session (YYYY-MM-DD) or ISO datetime")],
    end: Annotated[str, typer.Option(help="last session (YYYY-MM-DD) or ISO datetime")],
    source: Annotated[
        list[str] | None,
        typer.Option(help="fixtures | alpaca | newsapi | reddit (repeatable; NEWS_SOURCES)"),
    ] = None,
) -> None:
    """Collect, check, store and score news; rebuild the sessions' sentiment features.

    Dates cover the news those sessions' pre-market cutoffs can see (docs/news.md).
    """
    first, last = jobs.news_window(start, end)
    with console.status(f"news {first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} UTC"):
        _show(jobs.collect_news(first, last, _cli_run_id("news"), source or None))


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
    """Train and register a model (@champion if it is the first, else @challenger)."""
    with console.status("training"):
        _show(jobs.train_model(_date(as_of, "--as-of"), _cli_run_id("train")))


@models_app.command("promote")
def models_promote(
    as_of: DateOpt = None,
    version: Annotated[str | None, typer.Option(help="promote this version, no gate")] = None,
) -> None:
    """Promote @challenger if it beats @champion on the same window (or --version, by hand)."""
    _show(jobs.promote_model(_optional_date(as_of, "--as-of"), version))


@models_app.command("evaluate")
def models_evaluate(
    start: Annotated[str | None, typer.Option(help="first out-of-sample feature date")] = None,
    end: Annotated[str | None, typer.Option(help="last one (default: before the last bar)")] = None,
    sessions: Annotated[int, typer.Option(help="window length when --start is not given")] = 60,
    refit_every: Annotated[int, typer.Option(help="sessions between walk-forward refits")] = 21,
    window: Annotated[int | None, typer.Option(help="rolling training dates (default all)")] = None,
    purge: Annotated[int, typer.Option(help="sessions dropped before each test block")] = 1,
    embargo: Annotated[int, typer.Option(help="extra sessions dropped after the purge")] = 0,
    with_sentiment: Annotated[
        bool, typer.Option(help="add rows fitted with the sentiment feature set too")
    ] = False,
) -> None:
    """Walk-forward GKX table for every model kind and a zero forecast; logged to MLflow."""
    with console.status("evaluating models walk-forward"):
        result = jobs.evaluate_models(
            _optional_date(start, "--start"),
            _optional_date(end, "--end"),
            _cli_run_id("evaluate"),
            refit_every=refit_every,
            window=window,
            purge=purge,
            embargo=embargo,
            sessions=sessions,
            sentiment=with_sentiment,
        )
    console.print(f"out of sample {result['oos_start']} → {result['oos_end']}")
    console.print(result["markdown"], highlight=False, soft_wrap=True)
    _show({k: v for k, v in result.items() if k not in ("table", "markdown")})


@models_app.command("rollback")
def models_rollback() -> None:
    """Point @champion back at @previous_champion."""
    _show(jobs.rollback_model())


@app.command()
def rebalance(session: Annotated[str, typer.Option("--date", help="session to trade")]) -> None:
    """The pre-market rebalance for one session: predict, optimize, gate, submit, reconcile.

    Refuses before writing anything on a day that is not an NYSE session, with stale bars, the
    kill switch on or a failed reconciliation, and while another run holds the session's plan.
    """
    day = _date(session, "--date")
    with typer.progressbar(length=len(jobs.REBALANCE_STEPS), label=f"rebalance {day}") as bar:
        result = jobs.rebalance(day, _cli_run_id("rebalance"), on_step=lambda _: bar.update(1))
    _show(result)


@app.command()
def replan(session: Annotated[str, typer.Option("--date", help="session to re-plan")]) -> None:
    """A new plan version for a session whose plan was blocked (new client order ids).

    The old version is superseded; a submitted plan is never re-planned. Gate and submit the
    new version with `mltrade rebalance --date` afterwards (a plain rerun never re-plans).
    """
    day = _date(session, "--date")
    _show(jobs.replan(day, _cli_run_id("replan")))


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
    """Engage or release the persisted kill switch that every order task checks.

    Needs only WAREHOUSE_URL (or the embedded server under MLTRADE_HOME): it works while any
    other setting is malformed.
    """
    from pipelines.risk.kill_switch import incident_engine, kill_switch_status, set_kill_switch

    if action not in ("on", "off", "status"):
        raise typer.BadParameter(f"action must be on, off or status, got {action!r}")
    engine = incident_engine()
    if action in ("on", "off"):
        set_kill_switch(engine, action == "on", reason)
    enabled, why, updated = kill_switch_status(engine)
    typer.echo(redact(
        f"kill switch is {'ON' if enabled else 'off'}" + (f" ({why}, {updated})" if why else "")
    ))


@app.command()
def stream(
    role: Annotated[str, typer.Option(help="all | clients | processor")] = "all",
    symbols: Annotated[str | None, typer.Option(help="comma-separated; default: UNIVERSE")] = None,
    consumer: Annotated[
        str | None, typer.Option(help="consumer name in the group (default: host-role)")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="/metrics port (default STREAM_METRICS_PORT)")
    ] = None,
) -> None:
    """The streaming service (runs until stopped): Alpaca WebSockets -> bus -> warehouse."""
    from pipelines.streaming.service import StreamService, serve_forever

    if role not in ("all", "clients", "processor"):
        raise typer.BadParameter("--role must be all, clients or processor")
    settings = get_settings()
    engine = jobs.warehouse() if role != "clients" else None
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()] if symbols else None
    service = StreamService(settings, engine, role, wanted, consumer, metrics_port)  # type: ignore[arg-type]
    console.print(f"streaming ({role}); metrics on :{service.metrics_port}/metrics")
    serve_forever(service)


@app.command("risk-report")
def risk_report(session: Annotated[str, typer.Option("--date", help="rebalance session")]) -> None:
    """The risk gate's report and the stress results of a session's plan (losses positive)."""
    _show(jobs.plan_risk(_date(session, "--date")))


@app.command()
def summary(as_of: DateOpt = None) -> None:
    """Cash, positions, equity and P&L at a session's close."""
    _show(jobs.portfolio_summary(_optional_date(as_of, "--as-of") or date.today()))


@metrics_app.command("serve")
def metrics_serve(
    port: Annotated[int, typer.Option(help="port to listen on")] = 9464,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    as_of: DateOpt = None,
) -> None:
    """Serve /metrics for Prometheus: pipeline series plus warehouse state, until Ctrl-C."""
    import time

    from pipelines.monitoring import metrics

    engine = jobs.warehouse()
    day = _optional_date(as_of, "--as-of")
    # The job without its metrics decorator: a scrape reads the portfolio, it pushes nothing.
    summarize = jobs.portfolio_summary.__wrapped__  # type: ignore[attr-defined]
    server = metrics.serve(
        port, host, engine=engine, portfolio=lambda: summarize(day or date.today()), as_of=day
    )
    console.print(f"serving metrics on http://{host}:{server.port}/metrics (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


@app.command()
def check() -> None:
    """Check the configuration and reach the warehouse and MLflow; touches no data."""
    from pipelines.checks import run_checks

    results = run_checks()
    for result in results:
        mark = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark}  {result.name}: {result.detail}", soft_wrap=True)  # one line each
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def backtest(
    strategy: Annotated[
        str,
        typer.Option(
            help="momentum | mean_reversion | ml_xgboost | ml_random_forest | ml_ipca | ensemble"
        ),
    ],
    start: Annotated[str, typer.Option(help="first session of data to use, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last session, YYYY-MM-DD")],
    windows: Annotated[int, typer.Option(help="walk-forward windows")] = 12,
    oos_ratio: Annotated[float, typer.Option(help="out-of-sample share of a window")] = 0.3,
    scheme: Annotated[str, typer.Option(help="rolling | expanding")] = "rolling",
    retrain_every: Annotated[
        int | None, typer.Option(help="refit every N sessions (default: once a window)")
    ] = None,
    embargo: Annotated[int, typer.Option(help="sessions left out before each test")] = 0,
    rebalance_every: Annotated[int, typer.Option(help="sessions between optimizations")] = 5,
    mc_paths: Annotated[int, typer.Option(help="Monte Carlo bootstrap paths")] = 1000,
    seed: Annotated[int, typer.Option(help="Monte Carlo seed")] = 0,
) -> None:
    """Walk-forward backtest: an HTML tearsheet under $MLTRADE_HOME/reports/, logged to MLflow."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    options = {
        "n_windows": windows,
        "oos_ratio": oos_ratio,
        "scheme": scheme,
        "retrain_every": retrain_every,
        "embargo": embargo,
        "rebalance_every": rebalance_every,
        "mc_paths": mc_paths,
        "seed": seed,
    }
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"backtest {strategy}", total=None)
        result = jobs.backtest(
            strategy,
            _date(start, "--start"),
            _date(end, "--end"),
            _cli_run_id("backtest"),
            options,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    _show({k: result[k] for k in ("run_key", "report", "mlflow_run_id", "targets")})


@app.command("backtest-controls")
def backtest_controls(
    assets: Annotated[int, typer.Option(help="symbols in each synthetic market")] = 500,
    years: Annotated[float, typer.Option(help="years of daily bars (252 sessions each)")] = 10.0,
    strategy: Annotated[str, typer.Option(help="the learning strategy under test")] = "ml_ipca",
    windows: Annotated[int, typer.Option(help="walk-forward windows")] = 12,
    scheme: Annotated[str, typer.Option(help="rolling | expanding")] = "rolling",
    rebalance_every: Annotated[int, typer.Option(help="sessions between rebalances")] = 5,
    seed: Annotated[int, typer.Option(help="the markets' seed")] = 0,
) -> None:
    """Positive and null controls: the pipeline on a market with planted signal (and its
    oracle) and on the same market without; exits 1 when either control fails."""
    from pipelines.backtest.controls import ControlDesign, ControlRun, run_controls, verdict
    from pipelines.backtest.splits import WalkForward

    plan = WalkForward(n_windows=windows, scheme=scheme, retrain_every=21)  # type: ignore[arg-type]
    design = ControlDesign(assets, years, seed, strategy, plan, rebalance_every)

    def show(run: ControlRun) -> None:
        m = run.metrics
        console.print(
            f"{run.market:<8} {run.strategy:<15} Sharpe {m['sharpe']:6.2f}  DSR {m['dsr']:.3f}  "
            f"annual return {m['annual_return']:7.1%}  IC {m.get('ic_mean', float('nan')):.4f}  "
            f"turnover {m['turnover_annual']:5.1f}/yr  costs ${m['costs_total']:,.0f}  "
            f"({m['sessions']:.0f} sessions, {run.seconds:.0f} s)"
        )

    problems = verdict(run_controls(design, get_settings(), show))
    for problem in problems:
        console.print(f"[red]FAIL[/red]  {problem}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]ok[/green]  both controls pass")


@app.command()
def demo() -> None:
    """Run the whole pipeline through Airflow on the offline sample data (see README)."""
    script = PROJECT_ROOT / "scripts" / "demo.py"
    raise typer.Exit(subprocess.call([sys.executable, str(script)]))


def _on_signal(signum: int, frame: object) -> None:
    """SIGTERM (and SIGINT) end the command as Ctrl-C does: the running stage is marked
    failed on the way out (:func:`pipelines.runlog.stage_run`)."""
    _state["signal"] = signum
    raise KeyboardInterrupt


def _install_signal_handlers() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)


def _fail(exc: BaseException) -> int:
    """Report ``exc`` on one line (traceback with --debug; always to the log file)."""
    import traceback

    from pipelines.failures import EXIT_TERMINATED, EXIT_USAGE, describe
    from pipelines.monitoring.logging import log_traceback_to_file

    if isinstance(exc, click_errors.NoArgsIsHelpError):  # bare `mltrade`: the help
        exc.show()
        return EXIT_USAGE
    if isinstance(exc, click_errors.ClickException):  # bad arguments: click's own text
        typer.echo(redact(f"error: {' '.join(exc.format_message().split())} "
                          "(`mltrade --help` lists the commands and options)"), err=True)
        return exc.exit_code or EXIT_USAGE
    failure = describe(exc)
    log_traceback_to_file(exc)
    if _state["debug"]:
        typer.echo(redact("".join(traceback.format_exception(exc))), err=True)
    typer.echo(f"error: {failure.message}", err=True)
    if _state["signal"] is not None and failure.exit_code != EXIT_USAGE:
        import signal

        return EXIT_TERMINATED if _state["signal"] == signal.SIGTERM else failure.exit_code
    return failure.exit_code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: the process arguments); return the exit code.

    The error boundary: every failure becomes one line on stderr naming the problem and the
    fix (:mod:`pipelines.failures`), with a non-zero exit code.
    """
    from pipelines.monitoring.logging import configure_logging

    _state.update(debug=False, signal=None)
    try:
        configure_logging()
        _install_signal_handlers()
        code = app(args=argv, prog_name="mltrade", standalone_mode=False)
    except typer.Abort:
        code = _fail(KeyboardInterrupt())
    except (typer.Exit, SystemExit) as exc:
        exit_code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        code = exit_code if isinstance(exit_code, int) else 1
    except BaseException as exc:  # noqa: BLE001  (the boundary: everything is reported)
        code = _fail(exc)
    if code == 130 and _state["signal"] is not None:  # typer turned our interrupt into Exit
        import signal

        typer.echo("error: interrupted: the running stage was marked failed; rerun it "
                   "(stages are idempotent)", err=True)
        return 143 if _state["signal"] == signal.SIGTERM else 130
    return code if isinstance(code, int) else 0


def main() -> None:
    """The ``mltrade`` entry point."""
    raise SystemExit(run())


if __name__ == "__main__":
    main()
