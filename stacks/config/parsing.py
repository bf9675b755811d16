"""The config parser: keys, types and defaults come from the dataclass fields, so each is declared once.

A bad value raises ConfigError with a sentence naming the key (cdk.json's path to it) and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

_T = TypeVar("_T")


class ConfigError(ValueError):
    """A context value is missing or invalid; the message names the key."""


def _check_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, got {value}")


def _parse_object(cls: type[_T], raw: Any, *, name: str, prefix: str) -> _T:
    """One config object: unknown keys refused, each field parsed by its declared type."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be an object, got {type(raw).__name__}")
    declared = [item for item in fields(cls) if item.init]  # type: ignore[arg-type]
    allowed = {item.name for item in declared}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown keys in {name}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in declared:
        key = f"{prefix}{item.name}"
        if item.name not in raw or (raw[item.name] is None and _optional_type(hints[item.name])):
            if item.default is MISSING and item.default_factory is MISSING:
                raise ConfigError(f"{key} is required")
            continue
        value = raw[item.name]
        coerce = item.metadata.get("coerce")
        values[item.name] = _parse_value(hints[item.name], coerce(value) if coerce else value, key, item.metadata)
    return cls(**values)


def _optional_type(hint: Any) -> bool:
    return get_origin(hint) in (UnionType, Union) and type(None) in get_args(hint)


def _parse_value(hint: Any, value: Any, key: str, metadata: Mapping[str, Any]) -> Any:
    if _optional_type(hint):
        (hint,) = [arg for arg in get_args(hint) if arg is not type(None)]
    origin = get_origin(hint)
    if origin is tuple and not is_dataclass(get_args(hint)[0]):  # a list of plain values, may be empty
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {type(value).__name__} {value!r}")
        return tuple(_parse_value(get_args(hint)[0], item, f"{key}[{index}]", {}) for index, item in enumerate(value))
    if origin is tuple:  # a list of config objects, e.g. models
        (item_type, _) = get_args(hint)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{key} must be a non-empty list of {metadata.get('items', 'objects')}")
        return tuple(
            _parse_object(item_type, item, name=f"{key}[{index}]", prefix=f"{key}[{index}].")
            for index, item in enumerate(value)
        )
    if is_dataclass(hint):
        return _parse_object(hint, value, name=key, prefix=f"{key}.")  # type: ignore[arg-type]
    if origin is not None and issubclass(origin, Mapping):
        return dict(_typed(key, value, dict))
    kinds: dict[Any, type | tuple[type, ...]] = {str: str, int: int, float: (int, float), bool: bool}
    return _typed(key, value, kinds[hint])


def _typed(key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int in Python; a JSON true must not pass as a number.
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{key} must be {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{key} must be {_kind_name(kind)}, got {type(value).__name__} {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
