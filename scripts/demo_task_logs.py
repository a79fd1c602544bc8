"""Task logs for the demo's ``dag.test()`` runs, where the Airflow UI reads them.

``dag.test()`` runs each task in the demo's own process and writes no task log file, so the UI
would show the demo's runs with empty logs. While a task runs, :func:`task_log_files` copies
the records of Python's logging (the pipeline's own ``key=value`` lines, at INFO and above) to
``$AIRFLOW_HOME/logs/<Airflow's log filename template>`` as JSON lines, the format the UI's
log viewer reads. The console keeps its own level.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


class JsonLinesHandler(logging.Handler):
    """One JSON object per record: ``timestamp``, ``level``, ``event``, ``logger``."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.INFO)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = path.open("a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = record.getMessage()
            if record.exc_info:
                event += "\n" + logging.Formatter().formatException(record.exc_info)
            line = {
                "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname.lower(),
                "event": event,
                "logger": record.name,
            }
            self.stream.write(json.dumps(line, default=str) + "\n")
            self.stream.flush()
        except Exception:  # a log line must never fail the task
            self.handleError(record)

    def close(self) -> None:
        self.stream.close()
        super().close()


def log_path(ti) -> Path:  # noqa: ANN001  (Airflow's scheduler TaskInstance)
    """Where Airflow's file task handler (and so the UI) looks for ``ti``'s log."""
    from airflow.configuration import conf
    from airflow.utils.log.file_task_handler import FileTaskHandler

    base = conf.get("logging", "base_log_folder")
    return Path(base) / FileTaskHandler(base)._render_filename(ti, ti.try_number)


@contextlib.contextmanager
def task_log_files() -> Iterator[None]:
    """Within the block, every task ``dag.test()`` runs also logs to its UI log file."""
    import airflow.sdk.definitions.dag as dag_module

    original = dag_module._run_task

    def run_task(*, ti, task, **kwargs):  # noqa: ANN001, ANN202
        handler = JsonLinesHandler(log_path(ti))
        root = logging.getLogger()
        quiet = [(h, h.level) for h in root.handlers]
        level = root.level
        for h, h_level in quiet:  # the console keeps the level it had
            h.setLevel(max(h_level, level))
        root.setLevel(min(level, logging.INFO))
        root.addHandler(handler)
        try:
            return original(ti=ti, task=task, **kwargs)
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            for h, h_level in quiet:
                h.setLevel(h_level)
            handler.close()

    dag_module._run_task = run_task
    try:
        yield
    finally:
        dag_module._run_task = original
