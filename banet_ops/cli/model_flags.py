"""Command-line flags generated from a pydantic model: its fields are the one declaration.

Each field ``some_name`` becomes ``--some-name`` with the field's description (and default) as
help: lists repeat (``action="append"``), booleans get ``--x/--no-x``, ``Literal`` fields get
their choices.  A flag left out is absent from the parsed namespace, so the model's own default
applies when the namespace is validated with the model.
"""

from __future__ import annotations

import argparse
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _flag_kwargs(annotation: Any) -> dict[str, Any]:
    """``add_argument`` keywords for a field type (after Optional is removed)."""
    origin = get_origin(annotation)
    if origin is list:
        return {"action": "append"}
    if origin is Literal:
        return {"choices": get_args(annotation)}
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if annotation in (int, float, Path):
        return {"type": annotation}
    return {}


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel], *, metavars: dict[str, str] | None = None) -> None:
    """Add one ``--flag`` per field of ``model`` to ``parser``."""
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = f" (default: {default})" if default is not None and default != [] and not isinstance(default, bool) else ""
        kwargs = _flag_kwargs(_without_none(field.annotation))
        if metavars and name in metavars:
            kwargs["metavar"] = metavars[name]
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=argparse.SUPPRESS, help=f"{field.description or ''}{shown}", **kwargs)
