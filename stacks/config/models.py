"""One step of the failover chain: a Bedrock model, inference profile, provisioned model or LangChain model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from stacks.config.parsing import ConfigError

REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_FOUNDATION_MODEL = re.compile(r"^[a-z0-9-]+\.[A-Za-z0-9.:_-]+$")
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
_PROVISIONED_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):\d{12}:provisioned-model/[a-z0-9]+$")
# An exact model version (issue 11: no floating aliases): Bedrock ids end in a version, usually with its revision
# (amazon.nova-lite-v1:0, openai.gpt-oss-120b-1:0, a provisioned context variant ...-v1:0:300k), or a major
# version where Bedrock has no revision (amazon.titan-text-express-v1).
_PINNED = re.compile(r"-(?P<version>(v\d+(:\d+)?|\d+:\d+)(:\d+k)?)$|(?P<revision>:\d+(:\d+k)?)$")
_FLOATING = re.compile(r"latest", re.I)
# A LangChain target's constructor arguments that name its provider's model.
_MODEL_KWARGS = ("model", "model_id", "model_name")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/()-]{0,63}$")
# A Secrets Manager secret name, or its ARN (in a region of its own, read across regions then).
_SECRET_ID = re.compile(
    r"^([A-Za-z0-9/_+=.@-]{1,512}|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+)$"
)
# Constructor arguments whose names say they carry a credential (api_key, openai_api_key, token, password...).
_CREDENTIAL_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passwd|credential|private[_-]?key|access[_-]?key)", re.I
)


def _credential_keys(value: Any, path: str) -> list[str]:
    """Paths of the keys in `value` (nested objects included) whose names look like credentials."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _CREDENTIAL_KEY.search(str(key)):
                found.append(f"{path}.{key}")
            found.extend(_credential_keys(item, f"{path}.{key}"))
    return found


# Where each system inference profile prefix may route requests. IAM must allow the
# foundation model in every destination region, so this table is the source of truth.
INFERENCE_PROFILE_DESTINATIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"),
    "apac": ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2"),
}


@dataclass(frozen=True, kw_only=True)
class ModelTarget:
    """One step of the failover chain."""

    model_id: str  # foundation model id, system inference profile id, or provisioned model ARN
    region: str
    max_tokens: int = 1024
    # Wrap the model in an application inference profile (cost tags, per-app metrics).
    application_profile: bool = False
    # Opt-in: create no-commitment provisioned throughput for this foundation model (custom resource).
    provision_model_units: int | None = None
    # A non-Bedrock secondary: {"class": "package.module:ChatClass", "kwargs": {...}, "secret": "<name or ARN>"}
    # (a LangChain chat model). Credentials never go in kwargs: the Secrets Manager secret's JSON object is
    # merged into kwargs by the Lambda at cold start.
    langchain: Mapping[str, Any] | None = None
    # What answers and history show as the model (default: model_id; a provisioned ARN shows no account id).
    label: str | None = None
    # The account's quota for this model (Service Quotas); sizes the jobs worker's concurrency.
    quota_rpm: int = 100
    quota_tpm: int = 200_000
    # Exact versions this target may be rolled back to at runtime (the `model_versions` switch), e.g.
    # ["us.amazon.nova-lite-v1:0"] under a us.amazon.nova-2-lite-v1:0 model_id: same provider, called the same
    # way (same inference profile scope, or none). IAM allows each of them, so a rollback needs no deploy.
    previous_versions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.quota_rpm <= 1_000_000 or not 100 <= self.quota_tpm <= 100_000_000:
            raise ConfigError(
                "models[].quota_rpm must be 1..1000000 and quota_tpm 100..100000000, "
                f"got {self.quota_rpm}, {self.quota_tpm}"
            )
        if self.langchain is not None:
            cls = self.langchain.get("class")
            if not isinstance(cls, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", cls):
                raise ConfigError(f"models[].langchain.class must look like 'package.module:ChatClass', got {cls!r}")
            if not isinstance(self.langchain.get("kwargs", {}), Mapping):
                raise ConfigError("models[].langchain.kwargs must be an object of constructor arguments")
            if set(self.langchain) - {"class", "kwargs", "secret"}:
                raise ConfigError("models[].langchain allows only the keys class, kwargs and secret")
            secret = self.langchain.get("secret")
            if secret is not None and (not isinstance(secret, str) or not _SECRET_ID.match(secret)):
                raise ConfigError(
                    "models[].langchain.secret must name a Secrets Manager secret in each deployed region (a name "
                    f"such as bulwark/openai) or be its ARN, got {secret!r}"
                )
            credentials = _credential_keys(self.langchain.get("kwargs", {}), "models[].langchain.kwargs")
            if credentials:
                raise ConfigError(
                    f"{', '.join(credentials)} looks like a credential; config, the template and the Lambda "
                    "environment are not secret: store it in a Secrets Manager secret (a JSON object such as "
                    '{"api_key": "..."}) and name that secret in models[].langchain.secret; its keys are passed '
                    "to the model's constructor at cold start"
                )
            floating = [
                key for key in _MODEL_KWARGS
                if _FLOATING.search(str(self.langchain.get("kwargs", {}).get(key, "")))
            ]  # fmt: skip
            if floating:
                raise ConfigError(
                    f"models[].langchain.kwargs.{floating[0]} is a floating alias ('latest'): name the provider's "
                    "dated model version, so the chain calls the model it was tested with"
                )
            if self.previous_versions:
                raise ConfigError(
                    "models[].previous_versions applies to Bedrock targets; another provider's earlier model is a "
                    "target of its own"
                )
            self._check_label()
            return  # model_id is a display name and region a label for external providers
        if not REGION_PATTERN.match(self.region):
            raise ConfigError(f"models[].region must be an AWS region such as us-east-1, got {self.region!r}")
        if not 1 <= self.max_tokens <= 64000:
            raise ConfigError(f"models[].max_tokens must be between 1 and 64000, got {self.max_tokens}")
        if self.kind == "provisioned":
            match = _PROVISIONED_ARN.match(self.model_id)
            if match is None or match["region"] != self.region:
                raise ConfigError(
                    "models[].model_id: a provisioned model ARN must look like "
                    "arn:aws:bedrock:<region>:<account>:provisioned-model/<id> and its region must equal "
                    f"models[].region ({self.region}), got {self.model_id!r}"
                )
        elif not _FOUNDATION_MODEL.match(self.model_id):
            raise ConfigError(
                "models[].model_id must be a foundation model id (e.g. amazon.nova-lite-v1:0), a system "
                "inference profile id (e.g. us.amazon.nova-lite-v1:0) or a provisioned model ARN, "
                f"got {self.model_id!r}"
            )
        if self.kind != "provisioned":
            self._check_pinned()
        self._check_previous_versions()
        if self.application_profile and self.kind == "provisioned":
            raise ConfigError("models[].application_profile cannot wrap a provisioned model ARN; use it directly")
        if self.provision_model_units is not None:
            if self.kind != "foundation-model":
                raise ConfigError(
                    "models[].provision_model_units needs a foundation model id (provisioned throughput is "
                    f"bought per model and region), got {self.kind} {self.model_id!r}"
                )
            if self.application_profile:
                raise ConfigError("models[]: choose application_profile or provision_model_units, not both")
            if not 1 <= self.provision_model_units <= 100:
                raise ConfigError(
                    f"models[].provision_model_units must be between 1 and 100, got {self.provision_model_units}"
                )
        if self.kind == "system-profile":
            scope = self.model_id.split(".", 1)[0]
            allowed = INFERENCE_PROFILE_DESTINATIONS.get(scope)
            if allowed is not None and self.region not in allowed:
                raise ConfigError(
                    f"models[].region {self.region} cannot call the {scope}. inference profile "
                    f"{self.model_id}; allowed regions: {', '.join(allowed)}"
                )
        self._check_label()

    def _check_pinned(self) -> None:
        model = self.foundation_model_id or ""
        if _FLOATING.search(model) or not _PINNED.search(model):
            raise ConfigError(
                f"models[].model_id {self.model_id!r} does not name an exact model version: use Bedrock's "
                "versioned id (e.g. amazon.nova-lite-v1:0, anthropic.claude-3-5-haiku-20241022-v1:0 or its "
                "us./eu./apac./global. inference profile), never a floating alias such as 'latest' or a name "
                "without its version, so a rollback returns to exactly the model it replaced"
            )

    def _check_previous_versions(self) -> None:
        if not self.previous_versions:
            return
        if self.kind == "provisioned" or self.application_profile or self.provision_model_units is not None:
            raise ConfigError(
                f"models[].previous_versions: {self.model_id!r} is called through capacity created or bought for "
                "one model (provisioned throughput, or an application inference profile); list the previous "
                "version as a target of its own instead"
            )
        scope = self.model_id.split(".", 1)[0] if self.kind == "system-profile" else None
        provider = (self.foundation_model_id or "").split(".", 1)[0]
        seen: set[str] = {self.model_id}
        for previous in self.previous_versions:
            try:
                candidate = ModelTarget(model_id=previous, region=self.region, max_tokens=self.max_tokens)
            except ConfigError as error:
                raise ConfigError(f"models[].previous_versions: {previous!r}: {error}") from error
            if candidate.kind == "provisioned":
                raise ConfigError(f"models[].previous_versions: {previous!r} must be a model id, not an ARN")
            previous_scope = previous.split(".", 1)[0] if candidate.kind == "system-profile" else None
            previous_provider = (candidate.foundation_model_id or "").split(".", 1)[0]
            if previous_scope != scope or previous_provider != provider:
                way = f"the {scope}. inference profile" if scope else "the foundation model id"
                raise ConfigError(
                    f"models[].previous_versions: {previous!r} must be another version of {self.model_id!r}'s "
                    f"provider ({provider}) called the same way ({way}), so a rollback changes only the version"
                )
            if previous in seen:
                raise ConfigError(f"models[].previous_versions lists {previous!r} twice or repeats model_id")
            seen.add(previous)

    def with_version(self, model_id: str) -> ModelTarget:
        """This target calling another of its versions (one of `previous_versions`)."""
        return replace(self, model_id=model_id, previous_versions=())

    @property
    def version(self) -> str:
        """The exact model version the target calls: the id's version suffix (v1:0), 'provisioned' for a
        provisioned model (its version is fixed when the throughput is bought), or a LangChain target's model."""
        if self.kind == "langchain":
            kwargs = (self.langchain or {}).get("kwargs", {})
            return next((str(kwargs[key]) for key in _MODEL_KWARGS if key in kwargs), "-")
        if self.kind == "provisioned":
            return "provisioned"
        match = _PINNED.search(self.foundation_model_id or "")
        if match is None:
            return "-"
        return match["version"] or (match["revision"] or "").lstrip(":")

    def _check_label(self) -> None:
        if self.label is not None and not _LABEL.match(self.label):
            raise ConfigError(
                f"models[].label must be 1-64 letters, digits, spaces or . _ : / ( ) - characters, got {self.label!r}"
            )

    @property
    def display_name(self) -> str:
        """The model as users see it in answers: never an ARN (it would show the account id)."""
        if self.label is not None:
            return self.label
        if self.kind == "provisioned":
            return f"provisioned-model/{self.model_id.rsplit('/', 1)[-1]}"
        return self.model_id

    @property
    def secret(self) -> str | None:
        """The Secrets Manager secret (name or ARN) holding a LangChain target's credentials."""
        return None if self.langchain is None else self.langchain.get("secret")

    @property
    def kind(self) -> str:
        if self.langchain is not None:
            return "langchain"
        if self.model_id.startswith("arn:"):
            return "provisioned"
        if self.model_id.startswith(_PROFILE_PREFIXES):
            return "system-profile"
        return "foundation-model"

    @property
    def foundation_model_id(self) -> str | None:
        """The underlying model id (profile prefix stripped); None for provisioned ARNs."""
        if self.kind == "provisioned":
            return None
        if self.kind == "system-profile":
            return self.model_id.split(".", 1)[1]
        return self.model_id

    def destination_regions(self) -> tuple[str, ...]:
        """Regions where the foundation model may run when called through this target."""
        if self.kind != "system-profile":
            return (self.region,)
        scope = self.model_id.split(".", 1)[0]
        if scope == "global":
            return ("*",)  # global profiles route to any commercial region
        return INFERENCE_PROFILE_DESTINATIONS.get(scope, (self.region,))

    @property
    def key(self) -> str:
        return f"{self.model_id}@{self.region}"
