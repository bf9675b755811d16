"""The one Lambda factory: Python runtime, Powertools wiring, X-Ray, logs, local bundling, cold-start options."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, Duration, ILocalBundling, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.config import ConfigError
from stacks.config.sections import FunctionColdStart
from stacks.constructs.nag import skip_checkov, suppress

LIVE_ALIAS = "live"
ROOT = Path(__file__).resolve().parents[2]
LAMBDA_SRC = ROOT / "lambda_src"
# `make install` downloads the runtime wheels here so that synth itself needs no network.
WHEELHOUSE = ROOT / ".cache" / "wheels"
# Every package of the bundle, pinned with its wheel's sha256 (`make lock-lambda` writes it).
REQUIREMENTS_LOCK = LAMBDA_SRC / "requirements.lock"
RUNTIME = lambda_.Runtime.PYTHON_3_13
_PY_VERSION = "3.13"
# Source trees that belong in the bundle; tests, caches and the requirements file stay out.
_CODE_PACKAGES = ("core", "adapters", "handlers")
_NO_VPC_REASON = (
    "The function calls only public AWS APIs (Bedrock, DynamoDB) over TLS with IAM auth and reaches no private "
    "resource; a VPC would add NAT/endpoint cost and cold-start latency without narrowing its access."
)


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS, 120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS, 180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS, 1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS, 2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}  # fmt: skip


def log_retention(days: int) -> logs.RetentionDays:
    """The CDK enum for a retention the config has already validated."""
    return _RETENTION[days]


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Bundle without Docker: pip installs manylinux wheels for the Lambda runtime, then the code.

    The wheels are exactly the hash-locked set (requirements.lock, --require-hashes): the versions the
    tests ran with (constraints.txt), nothing floating, and no wheel whose bytes changed."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        out = Path(output_dir)
        offline = ["--no-index", "--find-links", str(WHEELHOUSE)] if WHEELHOUSE.is_dir() else []
        try:
            self._pip(out, offline)
        except subprocess.CalledProcessError as error:
            hint = " (run `make install` to refresh .cache/wheels; `make lock-lambda` after a requirements change)"
            hint = hint if offline else ""
            raise RuntimeError(f"bundling the Lambda dependencies failed{hint}: {error}") from error
        for package in _CODE_PACKAGES:
            shutil.copytree(LAMBDA_SRC / package, out / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return True

    @staticmethod
    def _pip(out: Path, offline: list[str]) -> None:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--require-hashes", "--requirement", str(REQUIREMENTS_LOCK),
                "--target", str(out),
                "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                "--python-version", _PY_VERSION, "--only-binary=:all:", "--upgrade", *offline,
            ],
            check=True,
        )  # fmt: skip


def lambda_code() -> lambda_.Code:
    """The shared code asset: one bundle serves every function (handlers differ)."""
    return lambda_.Code.from_asset(
        str(LAMBDA_SRC),
        exclude=["**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            local=PipLocalBundling(),
            command=["bash", "-c", "echo 'local bundling is required (no Docker here)' && exit 1"],
        ),
    )


class PythonFunction(Construct):
    """A Lambda with the house defaults: arm-free x86_64, tracing, JSON logs, encrypted log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        service_name: str,
        environment: dict[str, str],
        code: lambda_.Code,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        reserved_concurrency: int,
        timeout: Duration,
        no_dlq_reason: str,
        memory_size: int = 1024,
        cold_start: FunctionColdStart | None = None,
        primary: bool = True,
    ) -> None:
        """`cold_start`: provisioned concurrency or SnapStart (config `cold_start.<name>`); with either on, callers
        must invoke `target` (the "live" alias) rather than `function`. `primary`: built in the primary region
        (provisioned concurrency stays off in the DR region unless the config asks for it)."""
        super().__init__(scope, construct_id)
        live = cold_start if cold_start is not None and cold_start.enabled else None
        if live and live.snap_start and not RUNTIME.supports_snap_start:
            raise ConfigError(f"{service_name}: SnapStart is not available for {RUNTIME.name}")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=log_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{service_name} Lambda execution role",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=code,
            role=self.role,
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Only with an option on, so the default template is unchanged.
            **_cold_start_props(live),
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": "Bulwark",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # Powertools would put every traced return value (answers, whole conversations) and
                # exception text into X-Ray metadata, outside the customer-managed key: never.
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
                **environment,
            },
        )
        # What API Gateway and event sources invoke: the function ($LATEST), or its alias when an option is on.
        self.alias: lambda_.Alias | None = None
        self.target: lambda_.IFunction = self.function
        if live:
            self.alias = self._live_alias(live, primary=primary, reserved_concurrency=reserved_concurrency)
            self.target = self.alias
        # The role may write only to its own log group (no AWSLambdaBasicExecutionRole wildcard).
        self.log_group.grant_write(self.role)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                resources=["*"],
            )
        )
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
                    "permissions; the Resource must be '*'.",
                    "appliesTo": ["Resource::*"],
                },
            ],
            apply_to_children=True,
        )
        suppress(
            self.role,
            "CDK writes a role's grants into one inline policy attached only to this role; a separate "
            "managed policy would hold the same statements and be reusable where it must not be.",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            children=True,
        )
        suppress(
            self.function,
            "The bundle's pinned wheels are built and tested for CPython 3.13 (DESIGN: Lambda runs 3.12 "
            "or 3.13); moving to a newer runtime is a deliberate upgrade with the dependency pins.",
            "AwsSolutions-L1",
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [
                {"id": rule, "reason": _NO_VPC_REASON}
                for rule in ("NIST.800.53.R5-LambdaInsideVPC", "HIPAA.Security-LambdaInsideVPC")
            ]
            + [
                {"id": rule, "reason": no_dlq_reason}
                for rule in ("NIST.800.53.R5-LambdaDLQ", "HIPAA.Security-LambdaDLQ")
            ],
        )
        skip_checkov(self.function, _NO_VPC_REASON, "CKV_AWS_117")
        skip_checkov(self.function, no_dlq_reason, "CKV_AWS_116")
        skip_checkov(
            self.function,
            "The environment holds only resource names, model ids and settings, never a secret; Lambda encrypts "
            "it at rest with its service key, and a customer key would add a KMS call to every cold start.",
            "CKV_AWS_173",
        )

    def _live_alias(self, options: FunctionColdStart, *, primary: bool, reserved_concurrency: int) -> lambda_.Alias:
        """The "live" alias on the published version of this deploy, with its provisioned concurrency and the
        scheduled actions that move it (Application Auto Scaling, through its Lambda service-linked role)."""
        provisioned = options.provisioned_in(primary=primary)
        if provisioned and options.peak() > reserved_concurrency:
            raise ConfigError(
                f"cold_start: provisioned concurrency of up to {options.peak()} exceeds the function's reserved "
                f"concurrency ({reserved_concurrency}); Lambda cannot provision more than the function may run"
            )
        alias = lambda_.Alias(
            self,
            "Live",
            alias_name=LIVE_ALIAS,
            version=self.function.current_version,
            provisioned_concurrent_executions=provisioned or None,
        )
        actions = options.scheduled_actions() if provisioned else ()
        if actions:
            scaling = alias.add_auto_scaling(
                min_capacity=min(action.min for action in actions), max_capacity=options.peak()
            )
            for index, action in enumerate(actions):
                scaling.scale_on_schedule(
                    f"Schedule{index}",
                    schedule=appscaling.Schedule.expression(action.expression),
                    min_capacity=action.min,
                    max_capacity=action.max,
                )
        return alias


def _cold_start_props(options: FunctionColdStart | None) -> dict[str, object]:
    """The Function's properties for the options: SnapStart on published versions; versions the alias no longer
    points to are deleted (a retained SnapStart version would keep its snapshot, and its cache charge)."""
    if options is None:
        return {}
    props: dict[str, object] = {
        "current_version_options": lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
    }
    if options.snap_start:
        props["snap_start"] = lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
    return props
