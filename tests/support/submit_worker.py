"""A fork server for crash-injection tests: imports the pipeline once, then forks one real
order-submission process per job, which the test kills with SIGKILL at a chosen point.

Protocol (one JSON object a line): stdin takes ``{"strategy", "session_date", "crash_point",
"crash_at"}``; stdout answers ``{"pid", "signal", "exit"}`` when that process has ended.
``crash_point`` is one of ``pipelines.execution.orders.checkpoint``'s points (the process kills
itself there with SIGKILL) or null (the local Alpaca server kills it, see ``Fault.kill_client``).
The environment carries the settings (WAREHOUSE_URL, ALPACA_BASE_URL, keys, ...).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from datetime import date


def _run(job: dict) -> None:
    from pipelines.config import get_settings
    from pipelines.execution import orders
    from pipelines.execution.brokers.alpaca import AlpacaBroker
    from pipelines.warehouse.engine import create_engine
    from pipelines.warehouse.plans import PlanRef

    point, at = job.get("crash_point"), int(job.get("crash_at") or 1)
    seen = {"n": 0}

    def crash(name: str, coid: str | None) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == at:
                os.kill(os.getpid(), signal.SIGKILL)

    orders.checkpoint = crash
    settings = get_settings()
    engine = create_engine(settings.warehouse_url, settings)
    plan = PlanRef(job["strategy"], date.fromisoformat(job["session_date"]), 1)
    orders.submit_plan(engine, settings, plan, AlpacaBroker(settings), f"crash-{os.getpid()}")


def main() -> None:
    # Heavy imports once, before any fork; no connection is opened in this process.
    import pipelines.config  # noqa: F401
    import pipelines.execution.brokers.alpaca  # noqa: F401
    import pipelines.execution.orders  # noqa: F401
    import pipelines.portfolio.planner  # noqa: F401
    import pipelines.warehouse.engine  # noqa: F401
    from pipelines import calendar

    calendar.previous_session(date(2010, 8, 16))  # builds the NYSE calendar (seconds) once

    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os.dup2(2, 1)  # the child's prints must not mix with the protocol
            try:
                _run(job)
                code = 0
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        answer = {
            "pid": pid,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
