"""Stage entry points shared by the DAGs, the CLI and the demo.

Each job takes plain values (dates, ids), opens the warehouse, runs one stage, and returns a
small JSON-able summary: Airflow passes these keys and counts between tasks, never frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pipelines import calendar
from pipelines.config import get_settings
from pipelines.errors import WarehouseError
from pipelines.monitoring import metrics
from pipelines.monitoring.logging import ensure_logging
from pipelines.monitoring.metrics import observed
from pipelines.warehouse import get_engine
from pipelines.warehouse.migrate import discover, recorded
from pipelines.warehouse.partitions import drop_expired_partitions as drop_expired

if TYPE_CHECKING:
    from pipelines.models.return_model import Registry


def _champion_version(settings: Any, name: str) -> str | None:
    from pipelines.models import CHAMPION
    from pipelines.runtime import live_registry

    return live_registry(settings).alias_version(name, CHAMPION)


metrics.champion_lookup = _champion_version  # the train/promote/rollback gauges read it


def warehouse() -> sa.Engine:
    """The warehouse engine, refusing to run against a schema with pending migrations."""
    ensure_logging()
    engine = get_engine()
    with engine.connect() as conn:
        try:
            applied = set(recorded(conn))
        except sa.exc.ProgrammingError:
            applied = set()
    pending = [m.path.name for m in discover() if m.version not in applied]
    if pending:
        raise WarehouseError(
            f"warehouse schema is behind ({', '.join(pending)}): run `mltrade db upgrade`"
        )
    return engine


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def ingest_bars(
    start: date,
    end: date,
    run_id: str,
    symbols: list[str] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    vendor_connection: dict | None = None,
) -> dict:
    """Collect, validate and load daily bars for sessions in ``[start, end]``.

    Symbols go in batches of ``INGEST_BATCH_SYMBOLS``, one transaction each; ``on_batch(done,
    total)`` reports progress after each batch. ``vendor_connection`` (an Airflow connection's
    ``login``, ``password``, ``host``, ``extra``) supplies Alpaca's credentials under
    ``DATA_SOURCE=alpaca`` in place of the environment's.
    """
    from pipelines.ingest import ingest
    from pipelines.sources import get_source

    settings = get_settings()
    if settings.data_source == "alpaca" and vendor_connection is not None:
        from pipelines.sources.alpaca import settings_from_connection

        settings = settings.model_copy(update=settings_from_connection(**vendor_connection))
    summary = ingest(
        warehouse(),
        get_source(settings),
        start,
        end,
        symbols or settings.universe or None,
        run_id,
        settings.max_quarantine_fraction,
        batch_symbols=settings.ingest_batch_symbols,
        on_batch=on_batch,
        data_docs_root=settings.home if settings.validation_data_docs else None,
        empty_symbol_policy=settings.empty_symbol_policy,
        actions_on_error=settings.corporate_actions_on_error,
    )
    return _plain(summary)


def ingest_minute_bars(
    start: date,
    end: date,
    run_id: str,
    symbols: list[str] | None = None,
    vendor_connection: dict | None = None,
) -> dict:
    """Collect, validate and load one-minute bars of each NYSE session in ``[start, end]``.

    One transaction per session; each session's minutes are reconciled with its daily bar
    (``MINUTE_RECONCILE_TOLERANCE``). Needs a source with minute bars (``alpaca``).
    """
    from pipelines.ingest_minutes import ingest_minutes
    from pipelines.sources import get_source

    settings = get_settings()
    if settings.data_source == "alpaca" and vendor_connection is not None:
        from pipelines.sources.alpaca import settings_from_connection

        settings = settings.model_copy(update=settings_from_connection(**vendor_connection))
    source, engine = get_source(settings), warehouse()
    wanted = symbols or settings.universe or source.universe()
    sessions = [
        _plain(
            ingest_minutes(
                engine, source, day, wanted, f"{run_id}:{day.isoformat()}",
                settings.max_quarantine_fraction, settings.minute_reconcile_tolerance,
            )
        )
        for day in calendar.sessions(start, end)
    ]  # fmt: skip
    return {"sessions": sessions}


def refresh_universe(run_id: str) -> dict:
    """Re-derive universe membership from the bars of the configured source (idempotent)."""
    from pipelines.runlog import stage_run
    from pipelines.warehouse.universe import build_from_bars

    source, engine = get_settings().data_source, warehouse()
    with stage_run(engine, run_id, "universe", source=source) as run:
        with engine.begin() as conn:
            rows = build_from_bars(conn, source)
        run.summary = {"memberships": rows}
    return {"source": source, "memberships": rows}


def apply_retention(
    as_of: date,
    run_id: str,
    dry_run: bool = False,
    on_plan: Callable[[dict], None] = lambda plan: None,
) -> dict:
    """Drop bar partitions (TimescaleDB: chunks) wholly older than the retention settings.

    ``as_of`` is the session being processed, never the wall clock: a rerun drops the same.
    With ``BARS_RETENTION_DAYS``/``MINUTE_BARS_RETENTION_DAYS`` unset (default) nothing goes.
    An ``as_of`` beyond a table's newest row plus ``RETENTION_AS_OF_SLACK_DAYS`` is refused
    before anything is touched. ``on_plan`` receives what will be dropped (partitions and
    rows per table) before the drop; ``dry_run`` stops there.
    """
    from pipelines.monitoring.logging import get_logger
    from pipelines.runlog import stage_run
    from pipelines.warehouse.partitions import check_as_of, expired_partitions

    settings, engine = get_settings(), warehouse()
    horizons = {
        "bars": settings.bars_retention_days,
        "minute_bars": settings.minute_bars_retention_days,
    }
    with engine.connect() as conn:
        for table, days in horizons.items():
            if days is not None:
                check_as_of(conn, table, as_of, settings.retention_as_of_slack_days)
        plan = {
            t: {"partitions": e.partitions, "rows": e.rows}
            for t, d in horizons.items()
            for e in [expired_partitions(conn, t, as_of, d)]
        }
    on_plan(plan)
    if dry_run:
        return {"as_of": as_of, "dry_run": True, "would_drop": plan}
    get_logger(__name__).warning("retention dropping", as_of=str(as_of), plan=plan)
    with stage_run(engine, run_id, "retention", as_of=as_of, **horizons) as run:
        with engine.begin() as conn:
            dropped = {t: drop_expired(conn, t, as_of, d) for t, d in horizons.items()}
        run.summary = {"dropped": dropped, "rows": {t: p["rows"] for t, p in plan.items()}}
    return {"as_of": as_of, "dropped": dropped}


def build_features(start: date | None, end: date | None, run_id: str) -> dict:
    """(Re)compute the feature set for sessions in ``[start, end]`` (default: all bars)."""
    from pipelines.features.store import build_features as build

    rows = build(warehouse(), start, end, run_id=run_id)
    return {"rows": rows, "start": start, "end": end}


@observed("train")
def train_model(as_of: date, run_id: str) -> dict:
    """Train on the window ending at ``as_of``; register it (@champion if first, else
    @challenger)."""
    from pipelines.models.training import train
    from pipelines.runtime import live_registry

    settings = get_settings()
    ref = train(warehouse(), live_registry(settings), settings, as_of, run_id)
    return _plain(ref)


def rebalance_inputs(session_date: date) -> date:
    """The session whose close a rebalance for ``session_date`` trades on (the one before)."""
    return calendar.previous_session(session_date)


def predict(session_date: date, run_id: str) -> dict:
    """Expected returns from @champion, made at the close before ``session_date``."""
    from pipelines.models.inference import predict as run_predict
    from pipelines.runtime import live_registry

    settings = get_settings()
    model, rows = run_predict(
        warehouse(),
        live_registry(settings),
        settings.model_name,
        rebalance_inputs(session_date),
        run_id,
    )
    return {"model_name": model.ref.name, "model_version": model.ref.version, "rows": rows}


def _factor_model(registry: Registry, model_name: str, model_version: str) -> Callable[[], Any]:
    """The version's IPCA structure for the plan's risk model, loaded only if it asks."""
    from pipelines.models import ModelRef

    return lambda: registry.load(ModelRef(model_name, model_version)).factor_model


def plan(session_date: date, model_name: str, model_version: str, run_id: str) -> dict:
    """Target weights for ``session_date`` (an existing plan is returned unchanged).

    Guarded (:func:`pipelines.execution.guards.require_trading_allowed` before anything is
    written, then :func:`pipelines.session.before_planning`) and under the session's plan
    lock."""
    from pipelines.execution.guards import require_trading_allowed
    from pipelines.portfolio.plan_state import plan_lock
    from pipelines.portfolio.planner import build_plan
    from pipelines.runtime import live_ports
    from pipelines.session import before_planning

    engine, settings = warehouse(), get_settings()
    require_trading_allowed(engine, session_date, settings.broker)
    ports = live_ports(engine, settings, session_date)  # broker: turnover and minimum trade
    with plan_lock(engine, settings.strategy, session_date, "plan"):
        before_planning(engine, settings, ports.broker, session_date)
        ref = build_plan(
            engine,
            settings,
            session_date,
            model_name,
            model_version,
            run_id,
            ports.broker,
            _factor_model(ports.registry, model_name, model_version),
        )
    return _plain(ref)


def replan(session_date: date, run_id: str) -> dict:
    """A new plan version for ``session_date`` (new client order ids), superseding the latest
    one, which must not have been submitted: the operator's explicit re-plan of a blocked
    session. Predicts with @champion first; gate and submit with ``rebalance`` afterwards."""
    from pipelines.execution.guards import require_trading_allowed
    from pipelines.portfolio.plan_state import plan_lock
    from pipelines.portfolio.planner import replan as new_version
    from pipelines.runtime import live_ports
    from pipelines.session import before_planning

    engine, settings = warehouse(), get_settings()
    require_trading_allowed(engine, session_date, settings.broker)
    ports = live_ports(engine, settings, session_date)
    with plan_lock(engine, settings.strategy, session_date, "re-plan"):
        before_planning(engine, settings, ports.broker, session_date)
        prediction = predict(session_date, run_id)
        name, version = prediction["model_name"], prediction["model_version"]
        ref = new_version(
            engine,
            settings,
            session_date,
            name,
            version,
            run_id,
            ports.broker,
            _factor_model(ports.registry, name, version),
        )
    return _plain(ref)


def _plan_ref(plan_key: dict):
    from pipelines.warehouse.plans import PlanRef

    return PlanRef(
        plan_key["strategy"],
        date.fromisoformat(str(plan_key["session_date"])),
        int(plan_key["plan_version"]),
    )


@observed("risk_check")
def risk_check(plan_key: dict) -> dict:
    """Pre-trade gate on the plan; raises RiskLimitBreached (and records why) when blocked.

    Under the session's plan lock: a concurrent gate or submission fails with PlanConflict."""
    from pipelines.execution.brokers import get_broker
    from pipelines.portfolio.plan_state import plan_lock
    from pipelines.risk.gate import check_plan

    engine, settings, ref = warehouse(), get_settings(), _plan_ref(plan_key)
    with plan_lock(engine, ref.strategy, ref.session_date, "risk check"):
        report = check_plan(engine, settings, ref, get_broker(settings, engine))
    return _plain(report)


def plan_risk(session_date: date) -> dict:
    """The gate's decision on the session's latest plan, with its stress results."""
    from pipelines.risk.report import plan_risk as report

    return report(warehouse(), get_settings().strategy, session_date)


def approval(plan_key: dict, gate_report: dict) -> dict:
    """Whether the plan waits for a person before submit, why, and its summary (Markdown)."""
    from pipelines.approval import decide

    settings = get_settings()
    decision = decide(
        warehouse(), plan_key, gate_report, settings.trading_mode, settings.rebalance_approval
    )
    return decision.as_dict()


def submit(plan_key: dict, run_id: str) -> dict:
    """Send the approved plan's frozen orders, exactly once each (guarded, under the plan
    lock: see :func:`pipelines.execution.orders.submit_plan`)."""
    from pipelines.execution.brokers import get_broker
    from pipelines.execution.orders import submit_plan

    engine, settings = warehouse(), get_settings()
    summary = submit_plan(
        engine, settings, _plan_ref(plan_key), get_broker(settings, engine), run_id
    )
    return _plain(summary)


def reconcile(run_id: str | None = None) -> dict:
    """Let the broker report fills, update the ledger, and compare it with the broker."""
    from pipelines.execution.brokers import get_broker
    from pipelines.execution.reconcile import reconcile as run_reconcile

    engine, settings = warehouse(), get_settings()
    return _plain(run_reconcile(engine, get_broker(settings, engine), settings, run_id))


def dead_letters(include_resolved: bool = False) -> list[dict]:
    """Orders the broker refused for good, with the error (newest last)."""
    from pipelines.execution.dead_letter import list_dead_letters

    return [_plain(d) for d in list_dead_letters(warehouse(), include_resolved)]


def retry_order(client_order_id: str) -> dict:
    """Send a dead-lettered order again, exactly once (the broker is asked first)."""
    from pipelines.execution.brokers import get_broker
    from pipelines.execution.orders import retry_dead_letter

    engine, settings = warehouse(), get_settings()
    outcome = retry_dead_letter(engine, settings, get_broker(settings, engine), client_order_id)
    return {"client_order_id": client_order_id, "outcome": outcome}


@observed("portfolio_summary")
def portfolio_summary(as_of: date) -> dict:
    """Cash, positions at ``as_of``'s close, equity and P&L."""
    from pipelines.execution.brokers import get_broker
    from pipelines.execution.reconcile import portfolio_summary as summarize

    engine, settings = warehouse(), get_settings()
    return summarize(engine, get_broker(settings, engine), settings, as_of)


def cockpit() -> dict:
    """The Airflow UI's mltrade page: latest plan, risk, orders, positions, P&L, kill switch."""
    from pipelines.cockpit import snapshot
    from pipelines.execution.brokers import get_broker

    engine, settings = warehouse(), get_settings()
    return _plain(snapshot(engine, settings, get_broker(settings, engine)))


REBALANCE_STEPS = (
    "reconcile before",
    "predict",
    "optimize",
    "risk gate",
    "submit",
    "reconcile after",
)


def rebalance(
    session_date: date, run_id: str, on_step: Callable[[str], None] = lambda _: None
) -> dict:
    """The pre-market rebalance in one process, step for step as the Airflow DAG runs it
    (:func:`pipelines.session.rebalance_session`, the step the backtest replays).

    The money-path guard runs first (a weekend or holiday, a kill switch, stale bars or a
    failed reconciliation stop it before anything is written) and again before planning and
    submitting; the whole run holds the session's plan lock, so a concurrent rebalance of the
    same session fails at once with :class:`PlanConflict` and changes nothing.
    """
    from pipelines.execution.guards import require_trading_allowed
    from pipelines.portfolio.plan_state import plan_lock
    from pipelines.runtime import live_ports
    from pipelines.session import champion_predictor, rebalance_session

    engine, settings = warehouse(), get_settings()
    require_trading_allowed(engine, session_date, settings.broker)  # before any write
    ports = live_ports(engine, settings, session_date)  # the broker may write its account
    with plan_lock(ports.store, ports.settings.strategy, session_date, "rebalance"):
        return rebalance_session(
            ports.store,
            ports.settings,
            ports.broker,
            session_date,
            run_id,
            champion_predictor(ports.registry, ports.settings.model_name),
            on_step,
        )


def demo_summary(as_of: date) -> dict:
    """What the demo prints: rows per stage, the champion, the latest plan, orders and P&L."""
    from pipelines.warehouse.counts import row_counts
    from pipelines.warehouse.orders import orders_by_status

    engine, settings = warehouse(), get_settings()
    with engine.connect() as conn:
        count = row_counts(
            conn, ("bars", "quarantine", "features", "predictions", "orders", "fills")
        )
        orders: dict[str, int] = {}
        for status, _broker, n in orders_by_status(conn):
            orders[status] = orders.get(status, 0) + n
    return {
        "rows": count,
        "model": {
            "name": settings.model_name,
            "champion": _champion_version(settings, settings.model_name),
        },
        "top_weights": _top_weights(engine, settings.strategy),
        "orders_by_status": orders,
        "portfolio": portfolio_summary(as_of),
    }


def _top_weights(engine: sa.Engine, strategy: str, top: int = 5) -> dict[str, float]:
    """The newest plan's largest weights, rounded to 4 places."""
    from pipelines.warehouse import plans

    newest = plans.newest(engine, strategy)
    if newest is None:
        return {}
    weights = plans.target_weights(engine, newest[0])
    largest = weights.sort_values(ascending=False, kind="stable").head(top)
    return {str(symbol): round(float(w), 4) for symbol, w in largest.items()}


def latest_bar_date() -> date:
    """The newest session in ``bars``: the default 'as of' for runs triggered by data."""
    from pipelines.warehouse.bars import latest_session

    with warehouse().connect() as conn:
        latest = latest_session(conn)
    if latest is None:
        raise WarehouseError("no bars loaded yet: run `mltrade ingest` first")
    return latest


@observed("promote")
def promote_model(as_of: date | None, version: str | None = None) -> dict:
    """Gated promotion of @challenger as of a date, or a manual promotion of ``version``."""
    from pipelines.models import check_version_format

    if version is not None:
        check_version_format(version)  # before MLflow is even imported
    from pipelines.models.promotion import gated_promotion
    from pipelines.models.training import promote
    from pipelines.runtime import live_registry

    settings = get_settings()
    registry = live_registry(settings)
    if version is not None:
        promote(registry, settings.model_name, version, warehouse(), "manual")
        return {"champion": version, "promoted": True, "reason": "manual"}
    return gated_promotion(warehouse(), registry, settings, as_of or latest_bar_date())


@observed("rollback")
def rollback_model() -> dict:
    """@champion back to @previous_champion."""
    from pipelines.models.promotion import rollback
    from pipelines.runtime import live_registry

    settings = get_settings()
    return rollback(live_registry(settings), settings.model_name, warehouse())


def evaluate_models(
    start: date | None,
    end: date | None,
    run_id: str,
    refit_every: int = 21,
    window: int | None = None,
    purge: int = 1,
    embargo: int = 0,
    sessions: int = 60,
    sentiment: bool = False,
) -> dict:
    """GKX table of every model kind (and a zero forecast) on one out-of-sample window;
    ``sentiment`` adds each kind fitted with the sentiment feature set too.

    Default window: the ``sessions`` feature dates ending the session before the latest bar
    (the last date whose next-session return is known). Logged to MLflow.
    """
    from datetime import timedelta

    from pipelines.models.evaluation import EvaluationWindow, evaluate_and_log

    if end is None:
        end = calendar.previous_session(latest_bar_date())
    if start is None:
        start = calendar.sessions(end - timedelta(days=2 * sessions + 10), end)[-sessions]
    spec = EvaluationWindow(start, end, refit_every, window, purge, embargo)
    return evaluate_and_log(warehouse(), get_settings(), spec, run_id, sentiment=sentiment)


def backtest(
    strategy: str,
    start: date,
    end: date,
    run_id: str,
    options: dict | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict:
    """Walk-forward backtest of ``strategy`` on the warehouse's bars in ``[start, end]``:
    tearsheet under ``$MLTRADE_HOME/reports/``, rows in ``backtest_*``, an MLflow run."""
    from pipelines.backtest.job import BacktestOptions, check, run_backtest

    engine, settings = warehouse(), get_settings()
    chosen = BacktestOptions(**{k: v for k, v in (options or {}).items() if v is not None})
    data = check(engine, strategy, start, end, chosen)  # bad input fails before any work
    return run_backtest(
        engine, settings, strategy, start, end, run_id, chosen, data=data, progress=progress
    )


def news_window(start: str, end: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC from two dates or two ISO datetimes (with a zone).

    Dates ``D1``, ``D2`` are sessions: the window runs from the cutoff before ``D1``'s to
    ``D2``'s (pipelines/features/sentiment.py), so those sessions' sentiment is complete.
    """
    from pipelines.errors import ConfigurationError
    from pipelines.features.sentiment import cutoff

    try:
        if len(start) == 10 and len(end) == 10:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
            return cutoff(calendar.previous_session(first)), cutoff(last)
        a, b = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except ValueError as exc:
        raise ConfigurationError(
            f"news window {start!r}..{end!r}: give two dates (YYYY-MM-DD) or two ISO datetimes "
            "with a zone (2024-03-05T07:30-05:00)"
        ) from exc
    if a.tzinfo is None or b.tzinfo is None:
        raise ConfigurationError(
            f"news window {start!r}..{end!r}: datetimes need a zone (…Z or …-05:00)"
        )
    return a.astimezone(UTC), b.astimezone(UTC)


def collect_news(
    start: datetime,
    end: datetime,
    run_id: str,
    sources: list[str] | None = None,
    connections: dict[str, dict | None] | None = None,
) -> dict:
    """Collect, check, store and score news published in ``[start, end)``; rebuild the
    sentiment features of sessions whose cutoff is in the window (pipelines/ingest_news.py).

    ``sources`` default to ``NEWS_SOURCES``; ``connections`` ({source: Airflow connection
    fields}) supply credentials in place of the environment's.
    """
    from pipelines.ingest_news import run_news
    from pipelines.news.sources import settings_from_connection

    settings = get_settings()
    for name, conn in (connections or {}).items():
        settings = settings.model_copy(update=settings_from_connection(name, conn))
    return run_news(warehouse(), settings, sources or settings.news_sources, start, end, run_id)
