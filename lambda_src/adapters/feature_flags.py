"""The runtime switches' values from AWS AppConfig, through Powertools' feature flags utility.

`AppConfigStore` fetches the feature flags document (StartConfigurationSession once, then
GetLatestConfiguration); `FeatureFlags` validates it against Powertools' schema and evaluates each switch.
The cache interval is core.switches.SwitchBoard's (its clock can be injected), so Powertools' own cache is
off (max_age 0): one GetLatestConfiguration per interval. Errors propagate: the SwitchBoard keeps the last
good switches. In the sandbox the same code reaches local/appconfig_emulator.py through
AWS_ENDPOINT_URL_APPCONFIGDATA.

Powertools' feature flags package is imported, and its store built, on the first read (the first request),
not at cold start: its package __init__ imports the parameters utility and boto3 (about 30 ms of CPU on the
bench machine), which the chat path uses nowhere else.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from core.switches import FLAG_DEFAULTS


@cache
def _utility() -> tuple[Any, Any, Any]:
    """Powertools' AppConfigStore and FeatureFlags, and a snapshot store over one fetched document (so every
    switch is evaluated from the same read). Imported once, on the first read."""
    from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags, StoreProvider

    class Snapshot(StoreProvider):
        def __init__(self, document: dict[str, Any]) -> None:
            self._document = document

        @property
        def get_raw_configuration(self) -> dict[str, Any]:
            return self._document

        def get_configuration(self) -> dict[str, Any]:
            return self._document

    return AppConfigStore, FeatureFlags, Snapshot


class AppConfigSwitches:
    def __init__(self, *, application: str, environment: str, profile: str, client: Any = None) -> None:
        """`client`: an appconfigdata client (short timeouts, made by the wiring, possibly on its first use);
        None: Powertools makes one. The store over it is built on the first read."""
        self._store_args = {
            "environment": environment, "application": application, "name": profile, "max_age": 0,
            "boto3_client": client,
        }  # fmt: skip
        self._store: Any = None
        self._lock = threading.Lock()

    def _appconfig_store(self) -> Any:
        with self._lock:
            if self._store is None:
                self._store = _utility()[0](**self._store_args)
            return self._store

    def __call__(self) -> dict[str, Any]:
        """Each switch's value. Raises when AppConfig cannot be read or the document is not a valid flags
        document (Powertools' ConfigurationStoreError / SchemaValidationError)."""
        _, feature_flags, snapshot = _utility()
        document = feature_flags(store=self._appconfig_store()).get_configuration()  # fetch + schema validation
        flags = feature_flags(store=snapshot(document))
        return {name: flags.evaluate(name=name, default=default) for name, default in FLAG_DEFAULTS.items()}


def record_ignored_switch(flag: str) -> None:
    """One SwitchIgnored metric (dimension: the flag) per value a read left off, e.g. a model version that is not
    one of the target's configured ones: the safe default serves, and an alarm can see the bad deployment."""
    single = EphemeralMetrics()
    single.add_dimension(name="switch", value=flag)
    single.add_metric(name="SwitchIgnored", unit=MetricUnit.Count, value=1)
    single.flush_metrics()
