-- Universe membership over time: symbol was a member on every date in [valid_from, valid_to]
-- (valid_to inclusive; NULL = still a member). A backtest asks who was a member at T instead
-- of using today's list, which avoids survivorship bias as far as the data allows.
-- Intervals of one symbol never overlap (an exclusion constraint, via btree_gist, a trusted
-- contrib extension bundled with PostgreSQL and the TimescaleDB images).
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE universe (
    symbol      text        NOT NULL,
    valid_from  date        NOT NULL,
    valid_to    date,
    source      text        NOT NULL,  -- who says so: 'bars:sample' (derived), a vendor list...
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, valid_from),
    CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CONSTRAINT universe_no_overlap
        EXCLUDE USING gist (symbol WITH =, daterange(valid_from, valid_to, '[]') WITH &&)
);
