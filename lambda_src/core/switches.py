"""Runtime switches for incident response: changed in AWS AppConfig, applied per request without a deploy.

An operator can force a target's breaker open, reorder the chain, pin a chain position to another configured
model, roll a target back to one of its configured previous model versions, force degraded mode, or roll the
system prompt back to a catalog version. The switches are read through
a `SwitchBoard` (cached for `ttl_s`, injectable clock) and never fail a request: when the flags cannot be
read, or the document is invalid, the last good switches serve (or none before any read succeeded).

Every value is checked against what is configured: a target name that is not in the chain is ignored, a pin
may only name a configured model (never free text that could call any model), a model version only one of
that target's configured versions (its model_id or previous_versions, which IAM allows), a prompt version must look
like a catalog version. Pure: no AWS imports (adapters/feature_flags.py reads AppConfig).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.prompts import PromptProvider, PromptVersion

_log = logging.getLogger(__name__)

# The feature flags document (AppConfig type AWS.AppConfig.FeatureFlags, Powertools schema): each switch is
# one flag whose `default` holds its value. Non-boolean flags carry "boolean_type": false.
FORCE_OPEN = "force_open_targets"  # ["target", "target@region", ...]: their breakers count as open
CHAIN_ORDER = "chain_order"  # ["target", ...]: these first, in this order; the others keep theirs after
MODEL_PINS = "model_pins"  # {"target": "configured target"}: that position is served by the other model
MODEL_VERSIONS = "model_versions"  # {"target": "model id"}: that target calls one of its configured versions
FORCE_DEGRADED = "force_degraded"  # true: no model is called (cached or canned answer)
PROMPT_VERSION = "prompt_version"  # "3": answer with this catalog version instead of the active one

FLAG_DEFAULTS: dict[str, Any] = {
    FORCE_OPEN: [],
    CHAIN_ORDER: [],
    MODEL_PINS: {},
    MODEL_VERSIONS: {},
    FORCE_DEGRADED: False,
    PROMPT_VERSION: "",
}
_PROMPT_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")


def default_document() -> dict[str, Any]:
    """The document deployed with the stack: every switch off."""
    return {
        name: ({"default": value} if isinstance(value, bool) else {"default": value, "boolean_type": False})
        for name, value in FLAG_DEFAULTS.items()
    }


@dataclass(frozen=True, kw_only=True)
class Switches:
    force_open: frozenset[str] = frozenset()
    chain_order: tuple[str, ...] = ()
    pins: Mapping[str, str] = field(default_factory=dict)
    model_versions: Mapping[str, str] = field(default_factory=dict)  # "target" or "target@region" -> model id
    degraded: bool = False
    prompt_version: str | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.force_open or self.chain_order or self.pins or self.model_versions or self.degraded
            or self.prompt_version
        )  # fmt: skip

    def model_version(self, name: str, region: str) -> str | None:
        """The model id a switch rolls this target to (None: its configured one)."""
        return self.model_versions.get(f"{name}@{region}", self.model_versions.get(name))


NO_SWITCHES = Switches()


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of target names")
    return value


def version_table(targets: Iterable[tuple[str, str, Sequence[str]]]) -> dict[str, tuple[str, ...]]:
    """The model versions a `model_versions` switch may pick, per switch key, from each target's (name, region,
    allowed versions): `name@region` gets that target's own; a bare `name` applies to every target of that name
    (the same model in several regions), so it gets only the versions all of them allow (a `us.` profile must never
    be sent to the `eu.` target of the same name)."""
    table: dict[str, tuple[str, ...]] = {}
    by_name: dict[str, list[tuple[str, ...]]] = {}
    for name, region, versions in targets:
        table[f"{name}@{region}"] = tuple(versions)
        by_name.setdefault(name, []).append(tuple(versions))
    for name, lists in by_name.items():
        table[name] = tuple(v for v in lists[0] if all(v in other for other in lists[1:]))
    return table


def parse_switches(
    values: Mapping[str, Any],
    *,
    targets: Sequence[tuple[str, str]],
    versions: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Switches, list[str]]:
    """The switches from the flags' values, checked against the chain's (name, region) pairs and each target's
    allowed model versions (`versions`: switch key -> model ids, see `version_table`; a target not in it has none
    to switch to).

    Returns the switches and the problems found (a value ignored, never a request failed). A switch whose
    value has the wrong shape is left off; a target name not in the chain is dropped from its switch.
    """
    known = {name for name, _ in targets} | {f"{name}@{region}" for name, region in targets}
    models = {name for name, _ in targets}
    problems: list[str] = []

    def known_names(flag: str) -> list[str]:
        try:
            names = _names(values.get(flag, FLAG_DEFAULTS[flag]))
        except ValueError as error:
            problems.append(f"{flag}: {error}")
            return []
        unknown = [name for name in names if name not in known]
        if unknown:
            problems.append(f"{flag}: not in the chain, ignored: {', '.join(sorted(unknown))}")
        return [name for name in names if name in known]

    force_open = frozenset(known_names(FORCE_OPEN))
    order = tuple(dict.fromkeys(known_names(CHAIN_ORDER)))

    pins: dict[str, str] = {}
    raw_pins = values.get(MODEL_PINS, {})
    if not isinstance(raw_pins, dict):
        problems.append(f"{MODEL_PINS}: must map a target name to a configured model")
    else:
        for slot, model in raw_pins.items():
            if slot in known and isinstance(model, str) and model in models:
                pins[slot] = model
            else:
                problems.append(f"{MODEL_PINS}: {slot!r} -> {model!r} ignored (both must be configured targets)")

    model_versions: dict[str, str] = {}
    raw_versions = values.get(MODEL_VERSIONS, {})
    allowed_versions = versions or {}
    if not isinstance(raw_versions, dict):
        problems.append(f"{MODEL_VERSIONS}: must map a target name to one of its configured model versions")
    else:
        for slot, version in raw_versions.items():
            name = slot.rsplit("@", 1)[0] if slot not in models else slot
            permitted = allowed_versions.get(slot, allowed_versions.get(name, ()))
            if slot in known and isinstance(version, str) and version in permitted:
                model_versions[slot] = version
            else:
                allowed = ", ".join(permitted) or "none"
                problems.append(f"{MODEL_VERSIONS}: {slot!r} -> {version!r} ignored (allowed: {allowed})")

    degraded = values.get(FORCE_DEGRADED, False)
    if not isinstance(degraded, bool):
        problems.append(f"{FORCE_DEGRADED}: must be true or false")
        degraded = False

    version = values.get(PROMPT_VERSION, "")
    if version in ("", None):
        version = None
    elif not isinstance(version, str) or not _PROMPT_VERSION.match(version):
        problems.append(f"{PROMPT_VERSION}: a catalog version is a number such as 3")
        version = None

    switches = Switches(
        force_open=force_open,
        chain_order=order,
        pins=pins,
        model_versions=model_versions,
        degraded=degraded,
        prompt_version=version,
    )
    return switches, problems


def matches(name: str, region: str, names: frozenset[str] | Mapping[str, str] | Sequence[str]) -> bool:
    return name in names or f"{name}@{region}" in names


def arrange(targets: Sequence[tuple[str, str]], switches: Switches) -> list[int]:
    """The chain's order for one request, as indices into `targets` (each at most once).

    Pins first: a pinned position is served by the first target whose name is the pinned model. Then the
    targets named in `chain_order` move to the front in that order; the rest keep their configured order.
    """
    by_name: dict[str, int] = {}
    for index, (name, _) in enumerate(targets):
        by_name.setdefault(name, index)
    served: list[int] = []
    for index, (name, region) in enumerate(targets):
        pinned = switches.pins.get(f"{name}@{region}", switches.pins.get(name))
        served.append(by_name[pinned] if pinned is not None else index)
    chain = list(dict.fromkeys(served))
    if switches.chain_order:
        rank = {name: position for position, name in enumerate(switches.chain_order)}

        def position(index: int) -> int:
            name, region = targets[index]
            return min(rank.get(f"{name}@{region}", len(rank)), rank.get(name, len(rank)))

        chain.sort(key=position)  # stable: the others keep their order
    return chain


SwitchValues = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True, kw_only=True)
class SwitchCacheSettings:
    ttl_s: float = 30.0  # a flip reaches every execution environment within this
    retry_after_error_s: float = 30.0  # after a failed read the last good switches serve this long untried


class SwitchBoard:
    """The switches as last read, re-read every `ttl_s`. Never raises: a failed read keeps the last good ones."""

    def __init__(
        self,
        *,
        read: SwitchValues,
        targets: Sequence[tuple[str, str]],
        versions: Mapping[str, Sequence[str]] | None = None,
        settings: SwitchCacheSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_ignored: Callable[[str], None] | None = None,
    ) -> None:
        """`on_ignored(flag)` is called for every switch value left off (a metric, so an alarm can see a bad
        deployment that the logs alone would hide)."""
        self._read = read
        self._targets = tuple(targets)
        self._versions = dict(versions or {})
        self._on_ignored = on_ignored
        self._settings = settings or SwitchCacheSettings()
        self._clock = clock
        self._switches = NO_SWITCHES
        self._next_read: float | None = None
        self._lock = threading.Lock()

    def current(self) -> Switches:
        if self._next_read is not None and self._clock() < self._next_read:
            return self._switches
        if not self._lock.acquire(blocking=False):
            return self._switches  # another request is reading them
        try:
            try:
                values = self._read()
            except Exception as error:
                _log.warning("runtime switches unavailable (%s); keeping the last good ones", type(error).__name__)
                self._next_read = self._clock() + self._settings.retry_after_error_s
                return self._switches
            switches, problems = parse_switches(values, targets=self._targets, versions=self._versions)
            for problem in problems:
                _log.warning("runtime switch ignored: %s", problem)
                if self._on_ignored is not None:
                    try:
                        self._on_ignored(problem.split(":", 1)[0])
                    except Exception as error:  # a metric never fails a request
                        _log.warning("switch metric not recorded (%s)", type(error).__name__)
            if switches != self._switches:
                _log.warning("runtime switches now: %s", _describe(switches))
            self._switches = switches
            self._next_read = self._clock() + self._settings.ttl_s
            return self._switches
        finally:
            self._lock.release()


def _describe(switches: Switches) -> str:
    if not switches.active:
        return "none"
    parts = []
    if switches.force_open:
        parts.append(f"open={sorted(switches.force_open)}")
    if switches.chain_order:
        parts.append(f"order={list(switches.chain_order)}")
    if switches.pins:
        parts.append(f"pins={dict(switches.pins)}")
    if switches.model_versions:
        parts.append(f"versions={dict(switches.model_versions)}")
    if switches.degraded:
        parts.append("degraded")
    if switches.prompt_version:
        parts.append(f"prompt={switches.prompt_version}")
    return " ".join(parts)


class SwitchedPrompt:
    """The catalog's active prompt, unless a switch names another version (a rollback without touching the
    catalog's pointer). A version that cannot be read leaves the active prompt in place."""

    def __init__(
        self,
        *,
        active: PromptProvider,
        board: SwitchBoard,
        lookup: Callable[[str], PromptVersion],
    ) -> None:
        self._active = active
        self._board = board
        self._lookup = lookup
        self._pinned: dict[str, PromptVersion] = {}  # versions are immutable: read each once

    def current(self, *, budget_s: float | None = None) -> PromptVersion:
        version = self._board.current().prompt_version
        if version is None:
            return self._active.current(budget_s=budget_s)
        if version not in self._pinned:
            try:
                self._pinned[version] = self._lookup(version)
            except Exception as error:
                _log.warning("prompt version %s from a switch unavailable (%s)", version, type(error).__name__)
                return self._active.current(budget_s=budget_s)
        return self._pinned[version]
