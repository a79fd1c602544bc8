"""One typed settings object, read from the environment (and an optional ``.env`` file).

Every setting has the name of its environment variable; ``.env.example`` lists them all.
Money amounts are in US dollars, weights are fractions of portfolio equity.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"  # `make mlflow-ui` (MLFLOW_PORT=5000)


class Settings(BaseSettings):
    """Runtime configuration of every stage. Read once per process via :func:`get_settings`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Where state lives. Empty WAREHOUSE_URL means: start the embedded PostgreSQL under home.
    home: Path = Field(PROJECT_ROOT / ".mltrade", validation_alias="MLTRADE_HOME")
    warehouse_url: str = ""
    warehouse_pool_size: int = Field(5, ge=1)
    warehouse_statement_timeout_ms: int = Field(120_000, ge=0)
    mlflow_tracking_uri: str = ""

    # Streaming service, `mltrade stream` (docs/streaming.md). Empty URLs = Alpaca's streams.
    stream_data_url: str = ""  # e.g. ws://127.0.0.1:PORT/v2/iex (the local stream server)
    stream_trading_url: str = ""  # e.g. ws://127.0.0.1:PORT/stream
    stream_news: bool = False  # also stream Alpaca news into news_items (docs/news.md)
    stream_news_url: str = ""  # e.g. ws://127.0.0.1:PORT/v1beta1/news
    bus_url: str = "redis://127.0.0.1:6379/0"  # Redis Streams: the event bus
    bus_prefix: str = "mltrade"  # stream names are <prefix>:bars, <prefix>:trade_updates, ...
    bus_maxlen: int = Field(1_000_000, ge=1000)  # entries kept per stream (approximate trim)
    bus_claim_idle_ms: int = Field(30_000, ge=100)  # a dead consumer's entries are taken after
    stream_batch_size: int = Field(2000, ge=1)  # messages per read of the processor
    stream_block_ms: int = Field(50, ge=1)  # longest wait of one read
    stream_metrics_port: int = Field(9108, ge=0)  # Prometheus /metrics; 0 = any free port

    # Market data
    data_source: Literal["sample", "yahoo", "alpaca"] = "sample"
    universe: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_quarantine_fraction: float = Field(0.05, ge=0.0, le=1.0)
    ingest_batch_symbols: int = Field(100, ge=1)  # symbols per load transaction
    # Days of history kept; None (the default) keeps everything. Whole partitions/chunks only.
    bars_retention_days: int | None = Field(None, ge=1)
    minute_bars_retention_days: int | None = Field(None, ge=1)
    # Retention refuses an as_of more than this many days past a table's newest row.
    retention_as_of_slack_days: int = Field(7, ge=0)
    stale_bar_sessions: int = Field(3, ge=2)  # identical OHLCV on this many sessions: stale
    max_close_jump: float = Field(0.5, gt=0)  # |close/prev close - 1| beyond: quarantined
    validation_data_docs: bool = True  # build GX Data Docs under MLTRADE_HOME/gx on ingest
    # A requested symbol the vendor sent no bar for: fail the run, or record it and go on.
    empty_symbol_policy: Literal["fail", "record"] = "fail"
    # A permanent error of the corporate-actions endpoint: fail, or warn and load bars anyway.
    corporate_actions_on_error: Literal["fail", "warn"] = "fail"
    # Daily bar vs the same session rebuilt from its minute bars: relative tolerance.
    minute_reconcile_tolerance: float = Field(0.002, ge=0)

    # Model
    model_name: str = "mltrade-returns"
    model_kind: Literal["xgboost", "random_forest", "ipca"] = "xgboost"
    train_window_days: int = Field(180, ge=20)
    promotion_window_days: int = Field(20, ge=2)
    promotion_min_ic_gain: float = 0.0

    # Portfolio and risk
    strategy: str = "ml_mean_variance"
    risk_aversion: float = Field(5.0, gt=0)
    max_weight: float = Field(0.05, gt=0, le=1)
    cash_buffer: float = Field(0.02, ge=0, lt=1)
    min_order_notional: float = Field(100.0, ge=0)
    max_order_notional: float = Field(100_000.0, gt=0)
    max_orders_per_run: int = Field(600, ge=1)
    initial_capital: float = Field(1_000_000.0, gt=0)
    commission_per_share: float = Field(0.0, ge=0)
    slippage_bps: float = Field(5.0, ge=0)
    spread_bps: float = Field(0.0, ge=0)  # full quoted spread; a fill pays half
    impact_coefficient: float = Field(0.1, ge=0)  # price fraction per unit of participation
    borrow_rate: float = Field(0.0, ge=0)  # annual, on short notional
    margin_rate: float = Field(0.0, ge=0)  # annual, on negative cash

    # Portfolio construction (docs/portfolio.md)
    optimizer: Literal["mean_variance", "max_sharpe", "min_variance", "risk_parity"] = (
        "mean_variance"
    )
    portfolio_mode: Literal["long_only", "long_short"] = "long_only"
    gross_leverage: float | None = Field(None, gt=0)
    sector_max_weight: float | None = Field(None, gt=0, le=1)
    factor_exposure_bound: float | None = Field(None, gt=0)
    turnover_limit: float | None = Field(None, gt=0)
    turnover_penalty: float = Field(0.0, ge=0)
    min_trade_weight: float = Field(0.0, ge=0, lt=1)
    solver: Literal["CLARABEL", "OSQP", "SCS"] = "CLARABEL"  # not HIGHS: docs/portfolio.md
    risk_model: Literal["auto", "ipca", "ledoit_wolf"] = "auto"

    # Pre-trade risk (docs/risk.md); losses are positive fractions of equity
    var_method: Literal["historical", "normal", "cornish_fisher", "monte_carlo"] = "historical"
    var_confidence: float = Field(0.99, gt=0.5, lt=1)
    var_horizon_days: int = Field(1, ge=1)
    max_var: float = Field(0.05, gt=0, le=1)
    daily_loss_limit: float = Field(0.03, gt=0, le=1)
    max_drawdown: float = Field(0.15, gt=0, le=1)
    risk_breach_action: Literal["block", "scale"] = "block"
    # when_needed: a plan waits for a person in the Airflow UI if the gate scaled it or trading
    # is live; always: every plan waits (pipelines/approval.py)
    rebalance_approval: Literal["when_needed", "always"] = "when_needed"
    rebalance_approval_timeout_minutes: int = Field(60, ge=1)  # no answer: nothing is sent

    # Broker
    broker: Literal["simulated", "alpaca"] = "simulated"
    trading_mode: Literal["paper", "live"] = "paper"
    live_trading_confirmed: bool = False
    alpaca_api_key: SecretStr = SecretStr("")
    alpaca_secret_key: SecretStr = SecretStr("")
    alpaca_data_feed: Literal["iex", "sip"] = "iex"
    # Vendor sources (pipelines/sources): endpoint, request budget, timeouts, retries.
    alpaca_data_url: str = ""  # empty = Alpaca's data API; set for a proxy or a test server
    alpaca_requests_per_minute: float = Field(200.0, gt=0)
    yahoo_requests_per_minute: float = Field(60.0, gt=0)
    yahoo_data_url: str = ""  # empty = Yahoo's own hosts; set for a proxy or a test server
    source_timeout_s: float = Field(30.0, gt=0)
    source_retry_attempts: int = Field(5, ge=1, le=20)
    source_retry_initial_wait_s: float = Field(1.0, ge=0)
    source_retry_max_wait_s: float = Field(60.0, ge=0)

    # News and social sentiment (docs/news.md): collectors, credentials, endpoints.
    news_sources: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["fixtures"])
    news_required_sources: Annotated[list[str], NoDecode] = Field(default_factory=list)
    newsapi_api_key: SecretStr = SecretStr("")
    newsapi_url: str = ""  # empty = https://newsapi.org; set for a proxy or a test server
    newsapi_max_pages: int = Field(5, ge=1)  # 100 articles a page; the developer plan stops at 1
    reddit_client_id: SecretStr = SecretStr("")
    reddit_client_secret: SecretStr = SecretStr("")
    reddit_user_agent: str = "mltrade-news/0.1 (by mltrade)"
    reddit_subreddits: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["stocks", "investing", "wallstreetbets"]
    )
    reddit_oauth_url: str = ""  # empty = https://oauth.reddit.com (PRAW's oauth_url)
    reddit_url: str = ""  # empty = https://www.reddit.com (PRAW's reddit_url: token endpoint)
    reddit_max_items: int = Field(1000, ge=1)  # per subreddit and listing (Reddit's own cap)

    # Operations: logging, metrics, links (see docs/operations.md)
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_file: str = ""  # empty: stderr only; else a rotated JSON-lines file as well
    log_file_max_bytes: int = Field(10_000_000, ge=1024)
    log_file_backups: int = Field(5, ge=0)
    pushgateway_url: str = ""  # empty: batch tasks push no metrics
    grafana_url: str = ""  # for the Airflow UI links; empty: no link
    # The Airflow UI's MLflow link: `make mlflow-ui`'s address by default; empty (or unset with
    # an http(s) MLFLOW_TRACKING_URI): that tracking server.
    mlflow_ui_url: str = MLFLOW_UI_DEFAULT
    # Order submission (execution/): empty ALPACA_BASE_URL = Alpaca's paper or live endpoint.
    alpaca_base_url: str = ""
    alpaca_timeout_seconds: float = Field(10.0, gt=0)
    # alpaca-py's own retry of 429/504 (on POST too); ours asks the broker first, so 0.
    alpaca_sdk_retry_attempts: int = Field(0, ge=0, le=5)
    alpaca_sdk_retry_wait_seconds: float = Field(3.0, ge=0)
    broker_max_attempts: int = Field(4, ge=1, le=10)
    broker_backoff_seconds: float = Field(0.5, ge=0)
    broker_backoff_max_seconds: float = Field(8.0, ge=0)
    # Total wait of one broker request's retries, Retry-After included (execution/backoff.py).
    broker_max_wait_seconds: float = Field(60.0, ge=0)
    broker_rate_limit_per_minute: float = Field(180.0, gt=0)
    broker_rate_burst: int = Field(10, ge=1)
    broker_concurrency: int = Field(1, ge=1, le=32)

    @field_validator("universe", mode="before")
    @classmethod
    def _split_universe(cls, value: object) -> object:
        """Accept ``UNIVERSE=AAPL,MSFT`` as well as a list."""
        if isinstance(value, str):
            return [s.strip().upper() for s in value.split(",") if s.strip()]
        return value

    @field_validator("news_sources", "news_required_sources", "reddit_subreddits", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        """Accept ``NEWS_SOURCES=alpaca,reddit`` as well as a list (lower-cased)."""
        if isinstance(value, str):
            return [s.strip().lower() for s in value.split(",") if s.strip()]
        return value

    @field_validator(
        "bars_retention_days",
        "minute_bars_retention_days",
        "gross_leverage",
        "sector_max_weight",
        "factor_exposure_bound",
        "turnover_limit",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty optional setting (``TURNOVER_LIMIT=``, ``BARS_RETENTION_DAYS=``) is None:
        no such limit, keep everything."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _live_needs_confirmation(self) -> Settings:
        if self.trading_mode == "live" and not self.live_trading_confirmed:
            raise ValueError(
                "TRADING_MODE=live needs LIVE_TRADING_CONFIRMED=true as well; "
                "leave TRADING_MODE=paper unless you mean to trade real money"
            )
        return self

    @model_validator(mode="after")
    def _mlflow_ui_follows_a_remote_tracking_server(self) -> Settings:
        remote = self.mlflow_tracking_uri.startswith(("http://", "https://"))
        if not self.mlflow_ui_url or (remote and "mlflow_ui_url" not in self.model_fields_set):
            self.mlflow_ui_url = self.mlflow_tracking_uri if remote else MLFLOW_UI_DEFAULT
        return self

    @property
    def mlflow_uri(self) -> str:
        """The tracking URI: MLFLOW_TRACKING_URI, or a SQLite store under ``home``."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlflow" / "artifacts"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; a bad value raises :class:`ConfigurationError` naming it."""
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigurationError(f"invalid configuration: {exc}") from exc


class _WarehouseOnly(BaseSettings):
    """The two settings that reaching the warehouse needs, read like :class:`Settings`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    home: Path = Field(PROJECT_ROOT / ".mltrade", validation_alias="MLTRADE_HOME")
    warehouse_url: str = ""


def warehouse_settings() -> Settings:
    """The settings, or, when an unrelated setting is malformed, just enough to reach the
    warehouse: ``MLTRADE_HOME`` and ``WAREHOUSE_URL`` read, every other field at its default.

    For the commands that must work in an incident whatever else is misconfigured (the kill
    switch). Raises :class:`ConfigurationError` only if those two are themselves unreadable.
    """
    try:
        return get_settings()
    except ConfigurationError:
        try:
            only = _WarehouseOnly()
        except ValueError as exc:
            raise ConfigurationError(f"invalid warehouse configuration: {exc}") from exc
        return Settings.model_construct(home=only.home, warehouse_url=only.warehouse_url)
