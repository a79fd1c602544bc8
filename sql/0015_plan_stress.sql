-- Stress results per plan (pipelines/risk/stress.py): historical replays of the plan's
-- weights over crisis windows and shocks of ±k σ on the risk model's principal factors.
-- loss is a positive fraction of equity (a gain is negative); covered = false when the
-- warehouse holds no bars for the window (loss is then NULL).
CREATE TABLE plan_stress (
    strategy      text             NOT NULL,
    session_date  date             NOT NULL,
    plan_version  integer          NOT NULL,
    scenario      text             NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('historical', 'factor_shock')),
    start_date    date,
    end_date      date,
    covered       boolean          NOT NULL,
    loss          double precision,
    detail        jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (strategy, session_date, plan_version, scenario),
    FOREIGN KEY (strategy, session_date, plan_version) REFERENCES plans
);
