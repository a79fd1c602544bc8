"""A fork server for concurrency tests: imports the pipeline once, then forks one real
process per job, so two rebalances of one session can start a chosen few milliseconds apart.

Protocol (one JSON object a line on stdin):

- ``{"mode", "session_date", "out", "plan_key"?}`` forks a process at once that runs
  ``mode``: ``rebalance`` (``jobs.rebalance``: guard, plan lock, reconcile, plan, gate,
  submit, reconcile), ``dag`` (``jobs.plan``, ``jobs.risk_check``, ``jobs.submit`` one after
  the other, as the DAG's tasks run them) or ``submit`` (``jobs.submit`` on ``plan_key``).
  The process writes ``{"ok", "error_type", "message", "result"}`` to the file ``out``.
- ``"wait"`` waits for every process forked so far and answers one line:
  ``[{"pid", "exit", "signal"}, ...]``.

The predict step (MLflow inference: ``jobs.predict`` for the DAG's steps,
``session.champion_predictor`` for ``jobs.rebalance``) is replaced by the predictions the test
stored for model ``m`` version ``1``; every other step is the real job. The environment
carries the settings (WAREHOUSE_URL, BROKER=alpaca, ALPACA_BASE_URL and keys, limits).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from typing import Any


def _stored_predictions(session_date: date, run_id: str) -> dict:
    return {"model_name": "m", "model_version": "1", "rows": None}


def _stored_predictor(*_: Any) -> Any:
    from pipelines.session import Predicted

    return lambda store, as_of, run_id: Predicted("m", "1", 0)


def _run(job: dict) -> Any:
    from pipelines import jobs, session

    jobs.predict = _stored_predictions  # type: ignore[assignment]
    session.champion_predictor = _stored_predictor  # type: ignore[assignment]
    day = date.fromisoformat(job["session_date"])
    run_id = f"{job['mode']}-{os.getpid()}"
    if job["mode"] == "rebalance":
        return jobs.rebalance(day, run_id)
    if job["mode"] == "dag":
        key = jobs.plan(day, "m", "1", run_id)
        return {"gate": jobs.risk_check(key), "submit": jobs.submit(key, run_id)}
    if job["mode"] == "submit":
        return jobs.submit(job["plan_key"], run_id)
    raise ValueError(f"unknown mode {job['mode']}")


def _child(job: dict) -> int:
    from pipelines.errors import MltradeError

    try:
        outcome = {"ok": True, "result": _run(job)}
        code = 0
    except MltradeError as exc:
        outcome = {"ok": False, "error_type": type(exc).__name__, "message": str(exc)}
        code = 1
    except BaseException as exc:  # an unexpected failure: the test shows it
        import traceback

        outcome = {"ok": False, "error_type": type(exc).__name__, "message": str(exc),
                   "traceback": traceback.format_exc()}  # fmt: skip
        code = 2
    with open(job["out"], "w") as handle:
        json.dump(outcome, handle, default=str)
    return code


def main() -> None:
    # Heavy imports once, before any fork; no connection is opened in this process.
    import pipelines.execution.brokers.alpaca  # noqa: F401
    import pipelines.execution.orders  # noqa: F401
    import pipelines.jobs  # noqa: F401
    import pipelines.portfolio.planner  # noqa: F401
    import pipelines.risk.gate  # noqa: F401
    from pipelines import calendar

    calendar.previous_session(date(2010, 8, 16))  # builds the NYSE calendar (seconds) once

    children: list[int] = []
    for line in sys.stdin:
        if line.strip() == '"wait"':
            done = []
            for pid in children:
                _, status = os.waitpid(pid, 0)
                done.append({
                    "pid": pid,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                })  # fmt: skip
            children.clear()
            print(json.dumps(done), flush=True)
            continue
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os.dup2(2, 1)  # the child's prints must not mix with the protocol
            os._exit(_child(job))
        children.append(pid)


if __name__ == "__main__":
    main()
