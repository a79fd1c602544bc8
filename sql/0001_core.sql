-- Core warehouse tables. Time columns are UTC timestamptz; session_date is the NYSE date.
-- Prices are in US dollars, unadjusted as the vendor reports them; volume is in shares.

CREATE TABLE bars (
    symbol        text             NOT NULL,
    ts            timestamptz      NOT NULL,  -- bar close time
    session_date  date             NOT NULL,
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision NOT NULL,
    source        text             NOT NULL,
    ingested_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ts)
);
CREATE INDEX bars_session_date_idx ON bars (session_date);

-- Rows the validation gate refused, with the reason and the raw values as received.
CREATE TABLE quarantine (
    id              bigserial   PRIMARY KEY,
    row_hash        text        NOT NULL UNIQUE,  -- of (source, raw, expectation): reruns add nothing
    source          text        NOT NULL,
    symbol          text,
    session_date    date,
    expectation     text        NOT NULL,
    reason          text        NOT NULL,
    raw             jsonb       NOT NULL,
    run_id          text        NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per validation run of a batch: the GX result summary.
CREATE TABLE validation_runs (
    id             bigserial   PRIMARY KEY,
    run_id         text        NOT NULL,
    source         text        NOT NULL,
    suite          text        NOT NULL,
    start_date     date,
    end_date       date,
    rows_checked   integer     NOT NULL,
    rows_failed    integer     NOT NULL,
    success        boolean     NOT NULL,
    summary        jsonb       NOT NULL,
    validated_at   timestamptz NOT NULL DEFAULT now()
);

-- Point-in-time characteristics: values dated session_date use bars up to that close only.
CREATE TABLE features (
    feature_set          text  NOT NULL,
    feature_set_version  text  NOT NULL,
    symbol               text  NOT NULL,
    session_date         date  NOT NULL,
    "values"             jsonb NOT NULL,  -- {characteristic: cross-sectional rank in [-0.5, 0.5]}
    PRIMARY KEY (feature_set, feature_set_version, session_date, symbol)
);

-- Expected return of symbol over the next session, made with data through session_date's close.
CREATE TABLE predictions (
    model_name       text             NOT NULL,
    model_version    text             NOT NULL,
    session_date     date             NOT NULL,
    symbol           text             NOT NULL,
    expected_return  double precision NOT NULL,
    feature_set_version text          NOT NULL,
    run_id           text             NOT NULL,
    PRIMARY KEY (model_name, model_version, session_date, symbol)
);

-- A rebalance plan: one per (strategy, rebalance date, version). Orders derive from it.
CREATE TABLE plans (
    strategy        text        NOT NULL,
    session_date    date        NOT NULL,  -- the date the orders trade (fill at its open)
    plan_version    integer     NOT NULL,
    model_name      text        NOT NULL,
    model_version   text        NOT NULL,
    status          text        NOT NULL,  -- proposed | approved | blocked | submitted
    risk_report     jsonb,
    run_id          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (strategy, session_date, plan_version)
);

CREATE TABLE target_weights (
    strategy      text             NOT NULL,
    session_date  date             NOT NULL,
    plan_version  integer          NOT NULL,
    symbol        text             NOT NULL,
    weight        double precision NOT NULL,  -- fraction of equity, long-only for now
    PRIMARY KEY (strategy, session_date, plan_version, symbol),
    FOREIGN KEY (strategy, session_date, plan_version) REFERENCES plans
);

-- The orders ledger. The row is committed before the broker is called.
CREATE TABLE orders (
    client_order_id  text        PRIMARY KEY,
    strategy         text        NOT NULL,
    session_date     date        NOT NULL,
    plan_version     integer     NOT NULL,
    symbol           text        NOT NULL,
    side             text        NOT NULL CHECK (side IN ('buy', 'sell')),
    qty              numeric     NOT NULL CHECK (qty > 0),
    order_type       text        NOT NULL DEFAULT 'market',
    time_in_force    text        NOT NULL DEFAULT 'opg',
    status           text        NOT NULL,
    broker           text        NOT NULL,
    broker_order_id  text,
    model_name       text        NOT NULL,
    model_version    text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (strategy, session_date, plan_version) REFERENCES plans
);
CREATE INDEX orders_status_idx ON orders (status);

-- Every state transition of an order, with when and who said so.
CREATE TABLE order_events (
    id               bigserial   PRIMARY KEY,
    client_order_id  text        NOT NULL REFERENCES orders,
    status           text        NOT NULL,
    source           text        NOT NULL,  -- ledger | broker | reconcile
    detail           jsonb,
    at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE fills (
    fill_id          text             PRIMARY KEY,
    client_order_id  text             NOT NULL REFERENCES orders,
    symbol           text             NOT NULL,
    side             text             NOT NULL,
    qty              numeric          NOT NULL,
    price            double precision NOT NULL,
    commission       double precision NOT NULL DEFAULT 0,
    filled_at        timestamptz      NOT NULL
);

-- The simulated broker's book (the Alpaca adapter reads positions from Alpaca instead).
CREATE TABLE broker_accounts (
    broker           text             PRIMARY KEY,
    initial_cash     double precision NOT NULL,
    cash             double precision NOT NULL
);

CREATE TABLE positions (
    broker        text             NOT NULL,
    symbol        text             NOT NULL,
    qty           numeric          NOT NULL,
    avg_price     double precision NOT NULL,
    PRIMARY KEY (broker, symbol)
);

-- Persisted switches checked by every order task (kill_switch, ...).
CREATE TABLE controls (
    name        text        PRIMARY KEY,
    enabled     boolean     NOT NULL,
    reason      text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A run log: one row per stage execution. Not part of the idempotent data.
CREATE TABLE pipeline_runs (
    id           bigserial   PRIMARY KEY,
    run_id       text        NOT NULL,
    stage        text        NOT NULL,
    status       text        NOT NULL,  -- running | success | failed
    params       jsonb       NOT NULL DEFAULT '{}',
    summary      jsonb,
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
