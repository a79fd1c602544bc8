"""Cost of a log line: mltrade's logging (structlog JSON + redaction) vs the raw limits.

    .venv/bin/python benchmarks/bench_logging.py

Writes N lines to an in-memory stream through four set-ups, in one process:
1. stdlib ``logging`` with a plain ``%(message)s`` formatter (the floor);
2. structlog's stdlib JSON pipeline without redaction (the peer: what the project would cost
   without its redaction);
3. mltrade's ``configure_logging`` JSON pipeline with redaction of 6 secrets (a typical
   Settings + environment), run identity bound;
4. the same, console (readable) format.
Each line is one message with an argument and a small dict of values.
"""

from __future__ import annotations

import io
import logging
import time

import structlog
from pydantic import SecretStr

from pipelines.config import Settings
from pipelines.monitoring.logging import bound_run, configure_logging, reset_logging

N = 20_000


def _time(log: logging.Logger | object, n: int = N) -> float:
    start = time.perf_counter()
    for i in range(n):
        log.info("stage progress %d", i, extra=None) if isinstance(log, logging.Logger) else \
            log.info("stage progress", i=i, summary={"rows": i, "symbol": "AAPL"})
    return (time.perf_counter() - start) / n * 1e6


def _plain() -> float:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        return _time(logging.getLogger("bench.plain"))
    finally:
        root.removeHandler(handler)


def _structlog_json(redacted: bool, fmt: str = "json") -> float:
    if redacted:
        settings = Settings(alpaca_api_key=SecretStr("AKFAKEBENCHKEY000001"),
                            alpaca_secret_key=SecretStr("fake/bench+secret=0123456789"),
                            warehouse_url="postgresql://u:fake-bench-pw@db:5432/mltrade",
                            log_format=fmt)
        configure_logging(settings, stream=io.StringIO())
        try:
            with bound_run(run_id="bench", stage="ingest", session_date="2010-08-16"):
                return _time(structlog.get_logger("bench.mltrade"))
        finally:
            reset_logging()
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()],
        foreign_pre_chain=[structlog.stdlib.add_log_level]))
    root.addHandler(handler)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=True)
    try:
        with bound_run(run_id="bench", stage="ingest", session_date="2010-08-16"):
            return _time(structlog.get_logger("bench.peer"))
    finally:
        root.removeHandler(handler)
        structlog.reset_defaults()


def main() -> None:
    plain = _plain()
    peer = _structlog_json(redacted=False)
    ours = _structlog_json(redacted=True)
    console = _structlog_json(redacted=True, fmt="console")
    print(f"{N} lines each, µs per line")
    print(f"stdlib logging, plain format (floor)   {plain:8.1f}")
    print(f"structlog JSON, no redaction (peer)    {peer:8.1f}")
    print(f"mltrade JSON + redaction (ours)        {ours:8.1f}   {ours / peer:4.2f}× the peer")
    print(f"mltrade console + redaction            {console:8.1f}   "
          f"{console / peer:4.2f}× the peer")


if __name__ == "__main__":
    main()
