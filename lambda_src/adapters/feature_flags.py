"""The runtime switches' values from AWS AppConfig, through Powertools' feature flags utility.

`AppConfigStore` fetches the feature flags document (StartConfigurationSession once, then
GetLatestConfiguration); `FeatureFlags` validates it against Powertools' schema and evaluates each switch.
The cache interval is core.switches.SwitchBoard's (its clock can be injected), so Powertools' own cache is
off (max_age 0): one GetLatestConfiguration per interval. Errors propagate: the SwitchBoard keeps the last
good switches. In the sandbox the same code reaches local/appconfig_emulator.py through
AWS_ENDPOINT_URL_APPCONFIGDATA.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider

from core.switches import FLAG_DEFAULTS


class _Snapshot(StoreProvider):
    """One fetched document, so every switch is evaluated from the same read."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self._document

    def get_configuration(self) -> dict[str, Any]:
        return self._document


class AppConfigSwitches:
    def __init__(self, *, application: str, environment: str, profile: str, client: Any = None) -> None:
        """`client`: an appconfigdata client (short timeouts, made by the wiring); None: Powertools makes one."""
        self._store = AppConfigStore(
            environment=environment, application=application, name=profile, max_age=0, boto3_client=client
        )

    def __call__(self) -> dict[str, Any]:
        """Each switch's value. Raises when AppConfig cannot be read or the document is not a valid flags
        document (Powertools' ConfigurationStoreError / SchemaValidationError)."""
        document = FeatureFlags(store=self._store).get_configuration()  # fetch + schema validation
        flags = FeatureFlags(store=_Snapshot(document))
        return {name: flags.evaluate(name=name, default=default) for name, default in FLAG_DEFAULTS.items()}
