"""Prometheus metrics of the pipeline and the trading path.

Two kinds of series, one registry (:data:`REGISTRY`):

- **Events**, counted in the process that does the work: stage runs and durations (recorded
  by :func:`pipelines.runlog.stage_run` through :func:`record_stage`), rows ingested and
  quarantined, orders sent, risk-gate decisions, model metrics, Airflow task runs (from the
  listener in ``plugins/``). Batch processes push them to a Pushgateway
  (``PUSHGATEWAY_URL``; nothing is pushed when it is empty) with :func:`push`.
- **State**, read from the warehouse when scraped (:class:`WarehouseCollector`, through the
  repositories of :mod:`pipelines.warehouse`): data freshness, validation pass ratio, kill switch,
  plans blocked, orders by status, fill latency, equity and P&L, and how the champion's
  predictions fared against realized returns (:mod:`pipelines.monitoring.realized`).
  ``mltrade metrics serve --port`` exposes both over HTTP for Prometheus to scrape.

Units: seconds, USD, ratios as fractions (of equity, of rows); timestamps in Unix seconds.
Every name starts with ``mltrade_``; :func:`metric_names` lists the exported sample names
(dashboards and alert rules are checked against it).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

import sqlalchemy as sa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    pushadd_to_gateway,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
_F = TypeVar("_F", bound=Callable[..., Any])
PUSH_JOB = "mltrade-batch"  # the job label of pushed series (the endpoint's is "mltrade")

_DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
FILL_LATENCY_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400)

STAGE_RUNS = Counter(
    "mltrade_stage_runs", "Stage executions by outcome (success|failed)", ["stage", "status"],
    registry=REGISTRY,
)
STAGE_DURATION = Histogram(
    "mltrade_stage_duration_seconds", "Wall time of a stage execution", ["stage"],
    buckets=_DURATION_BUCKETS, registry=REGISTRY,
)
STAGE_LAST_SUCCESS = Gauge(
    "mltrade_stage_last_success_timestamp_seconds", "When a stage last succeeded (Unix s)",
    ["stage"], registry=REGISTRY,
)
ROWS_FETCHED = Counter(
    "mltrade_rows_fetched", "Bars fetched from the source", ["source"], registry=REGISTRY
)
ROWS_INGESTED = Counter(
    "mltrade_rows_ingested", "Bars loaded into the warehouse (inserted or changed)", ["source"],
    registry=REGISTRY,
)
ROWS_QUARANTINED = Counter(
    "mltrade_rows_quarantined", "Bars rejected by the validation gate", ["source"],
    registry=REGISTRY,
)
FEATURE_ROWS = Counter("mltrade_feature_rows", "Feature rows written", registry=REGISTRY)
PREDICTION_ROWS = Counter(
    "mltrade_prediction_rows", "Expected-return rows written", ["model"], registry=REGISTRY
)
MODEL_METRIC = Gauge(
    "mltrade_model_metric", "A metric of the last trained or scored model version",
    ["model", "version", "metric"], registry=REGISTRY,
)
CHAMPION_VERSION = Gauge(
    "mltrade_champion_version", "Registered version behind the @champion alias", ["model"],
    registry=REGISTRY,
)
RISK_DECISIONS = Counter(
    "mltrade_risk_gate_decisions", "Pre-trade gate outcomes (approved|blocked)", ["decision"],
    registry=REGISTRY,
)
GROSS_EXPOSURE = Gauge(
    "mltrade_portfolio_gross_exposure_ratio", "Gross exposure of the last checked plan "
    "(fraction of equity)", ["strategy"], registry=REGISTRY,
)
VAR_RATIO = Gauge(
    "mltrade_risk_var_ratio", "One-day value at risk of the last checked plan (fraction of "
    "equity)", ["strategy"], registry=REGISTRY,
)
VAR_LIMIT = Gauge(
    "mltrade_risk_var_limit_ratio", "The VaR limit the gate applies (fraction of equity)",
    ["strategy"], registry=REGISTRY,
)
BREAKER_TRIPPED = Gauge(
    "mltrade_risk_breaker_tripped", "1 when a circuit breaker blocked the last plan",
    ["breaker"], registry=REGISTRY,
)
ORDERS_SENT = Counter(
    "mltrade_orders_submitted", "Orders sent to the broker by this process", ["broker"],
    registry=REGISTRY,
)
AIRFLOW_TASK_RUNS = Counter(
    "mltrade_airflow_task_runs", "Airflow task instances finished, by state",
    ["dag_id", "task_id", "state"], registry=REGISTRY,
)
AIRFLOW_TASK_DURATION = Histogram(
    "mltrade_airflow_task_duration_seconds", "Airflow task instance duration",
    ["dag_id", "task_id"], buckets=_DURATION_BUCKETS, registry=REGISTRY,
)

# News and social sentiment (pipelines/news): pushed by the news stage.
NEWS_ITEMS = Counter(
    "mltrade_news_items", "News items stored (valid, in window) per source", ["source"],
    registry=REGISTRY,
)
NEWS_QUARANTINED = Counter(
    "mltrade_news_quarantined", "News items quarantined per source", ["source"],
    registry=REGISTRY,
)
NEWS_MATCHED_RATIO = Gauge(
    "mltrade_news_matched_ratio",
    "Share of a source's last batch (in window) matched to universe symbols", ["source"],
    registry=REGISTRY,
)
NEWS_SOURCE_ERRORS = Counter(
    "mltrade_news_source_errors", "News collection runs failed per source", ["source"],
    registry=REGISTRY,
)
NEWS_LAST_DELIVERY = Gauge(
    "mltrade_news_source_last_delivery_timestamp_seconds",
    "When a news source last delivered at least one valid item (Unix s)",
    ["source", "required"], registry=REGISTRY,
)
NEWS_SCORING_SECONDS = Histogram(
    "mltrade_news_scoring_seconds", "Wall time of scoring one batch of news items",
    ["scorer"], buckets=_DURATION_BUCKETS, registry=REGISTRY,
)
NEWS_SCORED = Counter(
    "mltrade_news_scored", "News items scored per scorer", ["scorer"], registry=REGISTRY
)


def record_news_collection(
    source: str, stored: int, quarantined: int, matched: float, required: bool = False
) -> None:
    """One source's batch: items kept, quarantined, share matched to symbols."""
    NEWS_ITEMS.labels(source).inc(stored)
    NEWS_QUARANTINED.labels(source).inc(quarantined)
    NEWS_MATCHED_RATIO.labels(source).set(matched)
    if stored:
        NEWS_LAST_DELIVERY.labels(source, str(required).lower()).set(time.time())


def record_news_source_error(source: str) -> None:
    NEWS_SOURCE_ERRORS.labels(source).inc()


def record_news_scoring(scorer: str, items: int, seconds: float) -> None:
    NEWS_SCORING_SECONDS.labels(scorer).observe(seconds)
    NEWS_SCORED.labels(scorer).inc(items)


def _number(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def record_stage(
    stage: str, status: str, seconds: float, summary: Mapping[str, Any], params: Mapping
) -> None:
    """Count one finished stage and the quantities its summary reports (never raises)."""
    try:
        STAGE_RUNS.labels(stage, status).inc()
        STAGE_DURATION.labels(stage).observe(seconds)
        if status == "success":
            STAGE_LAST_SUCCESS.labels(stage).set(time.time())
        _record_summary(stage, summary, params)
    except Exception:  # metrics must never break a stage
        log.warning("could not record metrics of stage %s", stage, exc_info=True)


def _label(value: Any) -> str:
    """A label value from data or settings, through the redaction boundary."""
    from pipelines.monitoring.logging import redact

    return redact(str(value))


def _record_summary(stage: str, summary: Mapping[str, Any], params: Mapping) -> None:
    if stage == "ingest":
        source = _label(params.get("source", "unknown"))
        fetched = _number(summary.get("rows_fetched")) or 0.0
        rejected = _number(summary.get("rows_rejected")) or 0.0
        ROWS_FETCHED.labels(source).inc(fetched)
        ROWS_INGESTED.labels(source).inc(_number(summary.get("rows_loaded")) or 0.0)
        ROWS_QUARANTINED.labels(source).inc(rejected)
    elif stage == "features":
        FEATURE_ROWS.inc(_number(summary.get("rows")) or 0.0)
    elif stage == "predict":
        PREDICTION_ROWS.labels(_label(params.get("model", "default"))).inc(
            _number(summary.get("rows")) or 0.0
        )
    elif stage == "submit":
        ORDERS_SENT.labels(_label(params.get("broker", "default"))).inc(
            _number(summary.get("sent")) or 0.0
        )
    elif stage == "train":
        record_model_metrics(
            _label(summary.get("model_name", "")),
            _label(summary.get("model_version", "")),
            summary.get("metrics") or {},
        )


def record_model_metrics(model: str, version: str, values: Mapping[str, Any]) -> None:
    """Set ``mltrade_model_metric`` for each numeric entry of ``values``."""
    for name, value in values.items():
        number = _number(value)
        if number is not None:
            MODEL_METRIC.labels(model, version, name).set(number)


def record_champion(model: str, version: str | None) -> None:
    """The version behind @champion (0 when there is none)."""
    CHAMPION_VERSION.labels(model).set(_number(version) or 0.0)


_SEEN_BREAKERS: set[str] = set()


def record_risk_report(strategy: str, report: Mapping[str, Any]) -> None:
    """Exposure, VaR and breaker state from a risk-gate report.

    Reads ``gross_exposure``, ``var`` (or ``var_95``/``value_at_risk``) and ``var_limit`` as
    fractions of equity, and ``breakers`` (names of the circuit breakers that tripped); keys
    the report does not have leave their series alone.
    """
    approved = bool(report.get("approved"))
    RISK_DECISIONS.labels("approved" if approved else "blocked").inc()
    if (gross := _number(report.get("gross_exposure"))) is not None:
        GROSS_EXPOSURE.labels(strategy).set(gross)
    for key in ("var", "var_95", "value_at_risk"):
        if (var := _number(report.get(key))) is not None:
            VAR_RATIO.labels(strategy).set(var)
            break
    if (limit := _number(report.get("var_limit"))) is not None:
        VAR_LIMIT.labels(strategy).set(limit)
    tripped = {str(b) for b in report.get("breakers") or ()}
    for breaker in tripped | _SEEN_BREAKERS:  # a breaker that no longer trips reads 0 again
        BREAKER_TRIPPED.labels(breaker).set(1 if breaker in tripped else 0)
    _SEEN_BREAKERS.update(tripped)


def record_task_instance(dag_id: str, task_id: str, state: str, seconds: float | None) -> None:
    """One finished Airflow task instance (called by the listener in ``plugins/``)."""
    AIRFLOW_TASK_RUNS.labels(dag_id, task_id, state).inc()
    if seconds is not None:
        AIRFLOW_TASK_DURATION.labels(dag_id, task_id).observe(seconds)


def _session_close_ts(day: date) -> float:
    # 21:00 UTC is at or after every NYSE close; precise enough for a freshness alert in hours.
    return datetime.combine(day, dtime(21, 0), tzinfo=UTC).timestamp()


class WarehouseCollector(Collector):
    """State series read from the warehouse at each scrape (a few small queries)."""

    def __init__(self, engine: sa.Engine, as_of: date | None = None) -> None:
        self.engine = engine
        self.as_of = as_of  # predictions are scored with bars up to this session (None: all)

    def describe(self) -> Iterable[Metric]:
        return []  # no query when registered

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                yield from self._collect(conn)
            yield GaugeMetricFamily(
                "mltrade_warehouse_up", "1 when the warehouse answered the last scrape", value=1
            )
        except Exception as exc:
            log.warning("warehouse metrics unavailable: %s", exc)
            yield GaugeMetricFamily(
                "mltrade_warehouse_up", "1 when the warehouse answered the last scrape", value=0
            )

    def _collect(self, conn: sa.Connection) -> Iterator[Metric]:
        # Imported here: the warehouse package loads pandas and psycopg, which the processes
        # that only count events (the Airflow listener) do not need.
        from pipelines.warehouse import bars, controls, orders, plans, validation

        latest = bars.latest_session(conn)
        fresh = GaugeMetricFamily(
            "mltrade_data_latest_session_timestamp_seconds",
            "Close (21:00 UTC) of the newest session in bars, Unix s; 0 when empty",
            value=_session_close_ts(latest) if latest else 0.0,
        )
        yield fresh

        ratio = GaugeMetricFamily(
            "mltrade_validation_pass_ratio",
            "Fraction of the last validated batch's rows that passed, per source",
            labels=["source"],
        )
        passed = GaugeMetricFamily(
            "mltrade_validation_last_success",
            "1 when the last validation batch of a source passed the gate",
            labels=["source"],
        )
        for source, checked, failed, success in validation.last_validations(conn):
            ratio.add_metric([source], 1.0 - failed / checked if checked else 1.0)
            passed.add_metric([source], 1.0 if success else 0.0)
        yield ratio
        yield passed

        yield GaugeMetricFamily(
            "mltrade_quarantine_rows", "Rows held in the quarantine table",
            value=validation.quarantined_rows(conn),
        )

        kill_switch = controls.state(conn, controls.KILL_SWITCH)
        yield GaugeMetricFamily(
            "mltrade_kill_switch_engaged", "1 when the persisted kill switch is on",
            value=1.0 if kill_switch and kill_switch.enabled else 0.0,
        )

        by_status = GaugeMetricFamily(
            "mltrade_orders", "Orders in the ledger by status and broker",
            labels=["status", "broker"],
        )
        for status, broker, n in orders.orders_by_status(conn):
            by_status.add_metric([status, broker], n)
        yield by_status

        plan_counts = GaugeMetricFamily(
            "mltrade_plans", "Plans by status (proposed|approved|blocked|submitted)",
            labels=["status"],
        )
        for status, n in plans.count_by_status(conn):
            plan_counts.add_metric([status], n)
        yield plan_counts

        yield self._fill_latency(conn)
        yield from self._stage_failures(conn)
        yield from self._prediction_scores(conn)

    def _prediction_scores(self, conn: sa.Connection) -> Iterator[Metric]:
        """Predicted against realized returns, newest realized prediction date per model."""
        from pipelines.monitoring.realized import latest_scores

        families = {
            key: GaugeMetricFamily(name, help_text, labels=["model", "version"])
            for key, name, help_text in _PREDICTION_SERIES
        }
        for scored in latest_scores(conn, self.as_of):
            labels = [scored.model_name, scored.model_version]
            values = {
                "rank_ic": scored.score.rank_ic,
                "mae": scored.score.mae,
                "hit_ratio": scored.score.hit_ratio,
                "symbols": float(scored.score.symbols),
                "session": _session_close_ts(scored.session_date),
            }
            for key, family in families.items():
                family.add_metric(labels, values[key])
        yield from families.values()

    def _fill_latency(self, conn: sa.Connection) -> Metric:
        """Seconds from an order's first broker acknowledgement to its first fill event."""
        from pipelines.warehouse import orders

        values = [max(0.0, v) for v in orders.fill_latencies(conn)]
        buckets = [
            (str(float(b)), sum(1 for v in values if v <= b)) for b in FILL_LATENCY_BUCKETS
        ]
        buckets.append(("+Inf", len(values)))
        return HistogramMetricFamily(
            "mltrade_fill_latency_seconds",
            "Broker acknowledgement to fill, over the latest 10,000 filled orders",
            buckets=buckets,
            sum_value=sum(values),
        )

    def _stage_failures(self, conn: sa.Connection) -> Iterator[Metric]:
        from pipelines.warehouse import runs

        last = GaugeMetricFamily(
            "mltrade_stage_last_status_failed",
            "1 when the latest recorded run of a stage failed (pipeline_runs)",
            labels=["stage"],
        )
        for stage, status in runs.last_statuses(conn).items():
            last.add_metric([stage], 1.0 if status == "failed" else 0.0)
        yield last


_PREDICTION_SERIES = (
    ("rank_ic", "mltrade_prediction_rank_ic",
     "Spearman rank IC of expected vs realized next-session returns, newest realized date"),
    ("mae", "mltrade_prediction_mae",
     "Mean absolute error of expected returns (return units), newest realized date"),
    ("hit_ratio", "mltrade_prediction_hit_ratio",
     "Share of symbols on the right side of the cross-sectional mean, newest realized date"),
    ("symbols", "mltrade_prediction_scored_symbols", "Symbols scored on that date"),
    ("session", "mltrade_prediction_scored_session_timestamp_seconds",
     "Close (21:00 UTC) of the prediction date scored, Unix s"),
)


class PortfolioCollector(Collector):
    """Equity, cash and P&L from a callable (the jobs' portfolio summary), per scrape."""

    def __init__(self, summary: Any) -> None:
        self.summary = summary

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            values = self.summary()
        except Exception as exc:
            log.warning("portfolio metrics unavailable: %s", exc)
            return
        for key, name, help_text in (
            ("equity", "mltrade_portfolio_equity_usd", "Cash plus positions at the last close"),
            ("cash", "mltrade_portfolio_cash_usd", "Cash at the broker"),
            ("pnl", "mltrade_portfolio_pnl_usd", "Equity minus initial capital"),
            ("positions", "mltrade_portfolio_positions", "Symbols held"),
        ):
            if (number := _number(values.get(key))) is not None:
                yield GaugeMetricFamily(name, help_text, value=number)


def push(gateway_url: str, grouping: Mapping[str, str] | None = None) -> bool:
    """Push the event series to a Pushgateway (POST: other groups are kept); False on error.

    A failed push is logged and swallowed: a batch task never fails because monitoring does.
    """
    if not gateway_url:
        return False
    try:
        pushadd_to_gateway(
            gateway_url, job=PUSH_JOB, registry=REGISTRY, grouping_key=dict(grouping or {}),
            timeout=5,
        )
        return True
    except Exception as exc:
        log.warning("could not push metrics to PUSHGATEWAY_URL=%s: %s", gateway_url, exc)
        return False


@dataclass
class MetricsServer:
    """A running metrics endpoint; :meth:`close` stops it and unregisters its collectors."""

    server: WSGIServer
    thread: threading.Thread
    collectors: list[Collector]
    unregistered: list[Collector]

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for collector in self.collectors:
            REGISTRY.unregister(collector)
        for collector in self.unregistered:
            REGISTRY.register(collector)


def serve(
    port: int, addr: str = "127.0.0.1", engine: sa.Engine | None = None, portfolio: Any = None,
    as_of: date | None = None,
) -> MetricsServer:
    """Expose the registry over HTTP on ``addr:port`` (0: any free port).

    With ``engine`` the warehouse state series are read at each scrape (predictions scored
    with bars up to ``as_of``, None: all); with ``portfolio`` (a callable returning the
    portfolio summary) equity, cash and P&L as well.
    """
    added: list[Collector] = []
    removed: list[Collector] = []
    if engine is not None:
        added.append(WarehouseCollector(engine, as_of))
    if portfolio is not None:
        removed = list(_PORTFOLIO_GAUGES.values())  # the collector reports these names now
        added.append(PortfolioCollector(portfolio))
    for collector in removed:
        REGISTRY.unregister(collector)
    for collector in added:
        REGISTRY.register(collector)
    server, thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return MetricsServer(server, thread, added, removed)


def metric_names() -> set[str]:
    """Every sample name this package can export (dashboards and alerts refer to these)."""
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, WarehouseCollector | PortfolioCollector):
            continue
        names |= set(REGISTRY._collector_to_names[collector])
    names |= {
        "mltrade_warehouse_up",
        "mltrade_data_latest_session_timestamp_seconds",
        "mltrade_validation_pass_ratio",
        "mltrade_validation_last_success",
        "mltrade_quarantine_rows",
        "mltrade_kill_switch_engaged",
        "mltrade_orders",
        "mltrade_plans",
        "mltrade_stage_last_status_failed",
        "mltrade_portfolio_equity_usd",
        "mltrade_portfolio_cash_usd",
        "mltrade_portfolio_pnl_usd",
        "mltrade_portfolio_positions",
    }
    names |= {f"mltrade_fill_latency_seconds{s}" for s in ("_bucket", "_sum", "_count")}
    names |= {name for _, name, _ in _PREDICTION_SERIES}
    from pipelines.monitoring.stream_metrics import StreamMetrics  # `mltrade stream`'s own registry

    names |= set(StreamMetrics().registry._names_to_collectors)
    return names


#: ``(settings, model name) -> @champion's version``, installed by the composition root
#: (``pipelines.jobs``): monitoring must not import the models package, which logs through it.
champion_lookup: Callable[[Any, str], str | None] | None = None


def record_job(job: str, result: Any) -> None:
    """Feed the series a job's result carries (never raises)."""
    try:
        if not isinstance(result, Mapping):
            return
        if job == "risk_check":
            from pipelines.config import get_settings

            record_risk_report(str(result.get("strategy") or get_settings().strategy), result)
        elif job in ("train", "promote", "rollback"):
            from pipelines.config import get_settings

            settings = get_settings()
            name = settings.model_name
            for version, scores in (result.get("scores") or {}).items():
                record_model_metrics(name, str(version), scores)  # the promotion window's
            if champion_lookup is not None:
                record_champion(name, champion_lookup(settings, name))
        elif job == "portfolio_summary":
            for metric in PortfolioCollector(lambda: result).collect():
                _PORTFOLIO_GAUGES[metric.name].set(metric.samples[0].value)
    except Exception:
        log.warning("could not record metrics of job %s", job, exc_info=True)


_PORTFOLIO_GAUGES = {
    name: Gauge(name, help_text, registry=REGISTRY)
    for name, help_text in (
        ("mltrade_portfolio_equity_usd", "Cash plus positions at the last close"),
        ("mltrade_portfolio_cash_usd", "Cash at the broker"),
        ("mltrade_portfolio_pnl_usd", "Equity minus initial capital"),
        ("mltrade_portfolio_positions", "Symbols held"),
    )
}


def observed(job: str) -> Callable[[_F], _F]:
    """Decorator for a job: feed its result to the series, then push (``PUSHGATEWAY_URL``)."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            from pipelines.config import get_settings
            from pipelines.errors import RiskLimitBreached

            try:
                result = fn(*args, **kwargs)
            except RiskLimitBreached:
                if job == "risk_check":
                    RISK_DECISIONS.labels("blocked").inc()
                push(get_settings().pushgateway_url, {"job_name": job})
                raise
            record_job(job, result)
            push(get_settings().pushgateway_url, {"job_name": job})
            return result

        return inner  # type: ignore[return-value]

    return wrap
