"""The base of every config section and the TOML reader (a leaf module: no paretorec imports
beyond validation, so both ``config`` and ``multitask`` can build on it without a cycle)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ._validation import DataFileError, ParetorecError, check_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class StrictModel(BaseModel):
    """Base of every config section: frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_toml(cls: type[_Config], path: str | Path) -> _Config:
        """Read and validate a TOML file; errors name the file and the field.

        An empty file is refused: it would silently run with every default.
        """
        raw = read_toml(path)
        if not raw:
            raise ParetorecError(
                f"config: {path} is empty; an empty config would run with every default "
                "(write at least the [data] section; see examples/)"
            )
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls: type[_Config], raw: dict[str, Any], source: str = "config") -> _Config:
        """Validate ``raw``; errors are one :class:`ParetorecError` naming the field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ParetorecError(f"{source}: {first_error(exc)}") from None


_Config = TypeVar("_Config", bound=StrictModel)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file ``path`` (argument name ``config`` in errors)."""
    file = check_file(path, "config")
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"config: {file} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
            "save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"config: {file} is not valid TOML: {exc}") from exc


def first_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        got = error.get("input")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown field {where!r}")
        elif error["type"] == "value_error":  # our own checks: the message names the value
            message = message.removeprefix("Value error, ")
            problems.append(f"field {where!r}: {message}" if where else message)
        elif not where:  # the whole document, e.g. not a table
            problems.append(f"{message}, got {got!r}")
        else:
            problems.append(f"field {where!r}: {message}, got {got!r}")
    return "; ".join(problems)
