"""Rewrite the settings table of docs/configuration.md from ``pipelines.config.Settings``.

Run after adding or changing a setting: ``.venv/bin/python scripts/config_reference.py``.
The meaning of each setting is in ``.env.example`` beside it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.config import PROJECT_ROOT, Settings

DOC = PROJECT_ROOT / "docs" / "configuration.md"
HEADER = "| setting | type | default | constraints |\n|---|---|---|---|\n"


def _type(annotation: object) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    # a "|" would split the markdown table's cell
    return re.sub(r"typing\.|pathlib\.|pydantic\.types\.", "", text).replace(" | ", " or ")


def _row(name: str, field) -> str:  # noqa: ANN001  (pydantic FieldInfo)
    env = field.validation_alias if isinstance(field.validation_alias, str) else name
    kind = _type(field.annotation)
    if env.upper() == "UNIVERSE":
        kind, constraints = "list[str]", "comma-separated"
    else:
        constraints = ", ".join(str(m) for m in field.metadata if "NoDecode" not in str(m))
    default = field.default
    if kind == "SecretStr":
        shown = "'' (secret)"
    elif isinstance(default, Path):
        shown = "'<repository>/.mltrade'"
    elif field.default_factory is not None:
        shown = repr(field.default_factory())
    else:
        shown = repr(default)
    return f"| `{env.upper()}` | `{kind}` | `{shown}` | {constraints} |\n"


def table() -> str:
    return HEADER + "".join(_row(n, f) for n, f in Settings.model_fields.items())


def main() -> None:
    text = DOC.read_text()
    start = text.index(HEADER.splitlines()[0])
    end = text.index("\n\n", start) + 1
    DOC.write_text(text[:start] + table() + text[end:])


if __name__ == "__main__":
    main()
