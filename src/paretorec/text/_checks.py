"""Checks shared by the text encoder and the item-text templates (a leaf module)."""

from __future__ import annotations

from typing import Any

from .._validation import ParetorecError, show


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """``texts`` as a list of strings; errors name the argument ``name`` and the value."""
    if isinstance(texts, str):
        raise ParetorecError(
            f"{name} must be a sequence of strings, got a single str; wrap it in a list"
        )
    try:
        values = list(texts)
    except TypeError:
        raise ParetorecError(
            f"{name} must be a sequence of strings, got {type(texts).__name__}"
        ) from None
    for position, text in enumerate(values):
        if not isinstance(text, str):
            raise ParetorecError(
                f"{name} must hold only strings; {name}[{position}] is {show(text)} "
                f"({type(text).__name__})"
            )
    return values
