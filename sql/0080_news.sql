-- News articles and social posts (pipelines/news, docs/news.md). One row per (source, item_id)
-- as the source published it: syndicated copies across sources are all kept (provenance) and
-- counted once by the sentiment features (same story_key: the earliest copy wins).
CREATE TABLE news_items (
    source        text        NOT NULL,  -- alpaca | newsapi | reddit | fixtures
    item_id       text        NOT NULL,  -- the vendor's id
    kind          text        NOT NULL CHECK (kind IN ('article', 'submission', 'comment')),
    published_at  timestamptz NOT NULL,  -- the vendor's publication time, in UTC
    updated_at    timestamptz,           -- the vendor's last-update time, when it gives one
    retrieved_at  timestamptz NOT NULL,  -- when this content was first fetched
    symbols       text[]      NOT NULL CHECK (cardinality(symbols) > 0),
    headline      text        NOT NULL,
    summary       text        NOT NULL DEFAULT '',
    body          text        NOT NULL DEFAULT '',
    url           text,
    author        text,
    content_hash  text        NOT NULL,  -- sha256 of headline, summary, body, url
    story_key     text        NOT NULL,  -- sha256 of the headline's words: syndication key
    PRIMARY KEY (source, item_id)
);
CREATE INDEX news_items_published ON news_items (published_at);
CREATE INDEX news_items_story ON news_items (story_key, published_at);
CREATE INDEX news_items_symbols ON news_items USING gin (symbols);

-- One score per item and scorer, in [-1, 1]; rescored when the scorer's version changes.
CREATE TABLE news_scores (
    source          text             NOT NULL,
    item_id         text             NOT NULL,
    scorer          text             NOT NULL,  -- vader | lm | a user's scorer
    scorer_version  text             NOT NULL,
    content_hash    text             NOT NULL,  -- of the content scored: stale when it differs
    score           double precision NOT NULL CHECK (score BETWEEN -1 AND 1),
    PRIMARY KEY (source, item_id, scorer),
    FOREIGN KEY (source, item_id) REFERENCES news_items ON DELETE CASCADE
);
