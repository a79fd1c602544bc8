"""What the CLI says when a command fails: one line naming the problem and the fix.

:func:`describe` maps every expected failure class to a :class:`Failure` (a one-line,
redacted message and an exit code). Classes are matched by their qualified names along the
exception's MRO, so describing an error imports nothing heavy (MLflow, GX, XGBoost), and a
new subclass of a mapped class (e.g. another :class:`~pipelines.errors.MltradeError`) is
covered without a change here. The full traceback goes only to ``--debug`` and the log file.

Exit codes: 1 a stage failed, 2 bad arguments or configuration, 3 the warehouse, 4 MLflow,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 70 an unexpected internal error.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.monitoring.logging import redact

MAX_DETAIL = 300

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WAREHOUSE = 3
EXIT_MLFLOW = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@dataclass(frozen=True)
class Failure:
    """One line for a person (already redacted) and the process exit code."""

    message: str
    exit_code: int


_INTEGRITY = (
    "a row conflicts with one already stored; nothing of this transaction was written. Rerun "
    "the stage (stages are idempotent); if it repeats, report the constraint named"
)

# (qualified class name, what failed, what to do, exit code), most specific first.
_KINDS: tuple[tuple[str, str, str, int], ...] = (
    ("pipelines.errors.ConfigurationError", "", "", EXIT_USAGE),
    ("pipelines.errors.WarehouseError", "", "", EXIT_WAREHOUSE),
    ("pipelines.errors.RegistryUnavailableError", "", "", EXIT_MLFLOW),
    ("pipelines.errors.MltradeError", "", "", EXIT_FAILED),
    ("pydantic_core._pydantic_core.ValidationError", "invalid configuration",
     "fix the setting named above (`mltrade check` lists them)", EXIT_USAGE),
    ("sqlalchemy.exc.IntegrityError", "warehouse integrity error", _INTEGRITY, EXIT_WAREHOUSE),
    ("psycopg.errors.IntegrityError", "warehouse integrity error", _INTEGRITY, EXIT_WAREHOUSE),
    ("sqlalchemy.exc.OperationalError", "warehouse unreachable or connection lost",
     "check that PostgreSQL runs and WAREHOUSE_URL is right (`mltrade check`), then rerun: "
     "the interrupted transaction was rolled back", EXIT_WAREHOUSE),
    ("psycopg.OperationalError", "warehouse unreachable or connection lost",
     "check that PostgreSQL runs and WAREHOUSE_URL is right (`mltrade check`), then rerun: "
     "the interrupted transaction was rolled back", EXIT_WAREHOUSE),
    ("sqlalchemy.exc.ProgrammingError", "warehouse schema error",
     "run `mltrade db upgrade`; if the error stays, report it with `--debug`", EXIT_WAREHOUSE),
    ("sqlalchemy.exc.SQLAlchemyError", "warehouse error",
     "check the warehouse (`mltrade check`) and rerun; `--debug` shows the traceback",
     EXIT_WAREHOUSE),
    ("psycopg.Error", "warehouse error",
     "check the warehouse (`mltrade check`) and rerun; `--debug` shows the traceback",
     EXIT_WAREHOUSE),
    ("mlflow.exceptions.MlflowException", "MLflow error",
     "check that the MLflow server is up and MLFLOW_TRACKING_URI is right (`mltrade check`)",
     EXIT_MLFLOW),
    ("xgboost.core.XGBoostError", "XGBoost error",
     "rebuild the features (`mltrade features`) and retrain; `--debug` shows the traceback",
     EXIT_FAILED),
    ("great_expectations.exceptions.exceptions.GreatExpectationsError",
     "Great Expectations error",
     "delete $MLTRADE_HOME/gx (it is rebuilt on the next ingest) and rerun", EXIT_FAILED),
    ("requests.exceptions.RequestException", "network error",
     "check that the service named above is reachable, then rerun", EXIT_FAILED),
    ("builtins.PermissionError", "permission denied",
     "fix the owner or mode of the path named, or point MLTRADE_HOME elsewhere", EXIT_FAILED),
    ("builtins.FileNotFoundError", "file not found",
     "check the path named (and MLTRADE_HOME)", EXIT_FAILED),
    ("builtins.OSError", "operating-system error",
     "check the path or service named, its permissions and free disk space", EXIT_FAILED),
)


def _names(exc: BaseException) -> list[str]:
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__]


def _first_line(exc: BaseException) -> str:
    """The useful first line: the driver's message for SQLAlchemy, MLflow's own message."""
    inner = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text = str(getattr(inner, "message", None) or inner).strip()
    line = text.splitlines()[0].strip() if text else type(inner).__name__
    return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 1] + "…"


def describe(exc: BaseException) -> Failure:
    """The one-line message and exit code for ``exc`` (any exception, never raises)."""
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted: the running stage was marked failed; rerun it "
                       "(stages are idempotent)", EXIT_INTERRUPTED)
    names = _names(exc)
    for name, what, fix, code in _KINDS:
        if name in names:
            if not what:  # the project's own errors already say what to do: keep it whole
                return Failure(_one_line(str(exc) or type(exc).__name__), code)
            return Failure(_one_line(f"{what}: {_first_line(exc)}. {fix}"), code)
    return Failure(
        _one_line(f"unexpected {type(exc).__name__}: {_first_line(exc)}. This is a bug: rerun "
                  "with --debug and report the traceback"),
        EXIT_INTERNAL,
    )


def _one_line(text: str) -> str:
    return redact(" ".join(text.split()))
