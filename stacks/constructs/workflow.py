"""Long workflows (ADR 0005): the summarize workflow as a Lambda durable function, invoked by its alias.

- `DurableConfig` (L1 property on the PythonFunction's CfnFunction: the house Lambda factory keeps its role, logs
  and nag findings): the whole execution's timeout and the history's retention, from config `workflows`.
- The "live" alias on the version of this deploy: a durable function is invoked by a qualified ARN, so each
  replay of an execution runs the code it started with. Earlier versions are retained (RETAIN, explicit): an
  execution started before a deploy still replays on its own version.
- Exact IAM: the checkpoint API on this function's durable executions only (`<function arn>:*`: Lambda authorizes
  them on the execution ARN, `<function>:<version>/durable-execution/...`; an unqualified ARN never matches and
  aliases do not apply); InvokeFunction for the worker on the alias only (`grant_start`).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.python_function import PythonFunction, lambda_code

ALIAS = "live"
CHECKPOINT_ACTIONS = ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]


class SummarizeWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        environment: dict[str, str],
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        """`environment`: the workflow's Settings contract, rendered (stacks.lambda_settings.workflow_settings)."""
        super().__init__(scope, construct_id)
        workflows = config.workflows
        self.lambda_ = PythonFunction(
            self,
            "Function",
            handler="handlers.workflow.lambda_handler",
            service_name="summarize",
            code=lambda_code(),
            log_key=log_key,
            log_retention=log_retention,
            reserved_concurrency=workflows.reserved_concurrency,
            # One invocation runs steps until the next wait: one chapter's model call (jobs.deadline_s) and its
            # writes fit, as in the worker.
            timeout=Duration.seconds(config.jobs.worker_timeout_s),
            no_dlq_reason="A durable function: Lambda keeps each execution's state and retries a failed invocation "
            "from its checkpoints; a step that fails for good fails the job with a reason (jobs table). An "
            "on-failure destination would only see the start event, which holds ids alone.",
            environment=environment,
        )
        self.function = self.lambda_.function
        self.role = self.lambda_.role
        cfn = self.function.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)
        cfn.durable_config = lambda_.CfnFunction.DurableConfigProperty(
            execution_timeout=workflows.execution_timeout_s,
            retention_period_in_days=workflows.retention_days,
        )
        version = self.function.current_version
        version.apply_removal_policy(RemovalPolicy.RETAIN)  # an execution replays on the version it started on
        self.alias = lambda_.Alias(self, "Live", alias_name=ALIAS, version=version)
        # Its own policy, not the role's default one: the function depends on that (CDK orders the role's grants
        # before the function), and a statement naming the function there would be a circular dependency.
        checkpoints = iam.Policy(
            self,
            "Checkpoints",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="CheckpointOwnExecutions",
                    actions=CHECKPOINT_ACTIONS,
                    resources=[f"{self.function.function_arn}:*"],
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            checkpoints,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Durable execution ARNs are sub-resources of this function's versions "
                    "(<function>:<version>/durable-execution/<name>/<id>), unknown at deploy time; the wildcard is "
                    "the qualifier of this one function, as the Lambda durable functions security guide prescribes.",
                    applies_to=[RegexAppliesTo(regex=r"/^Resource::<SummarizeFunction[0-9A-F]+\.Arn>:\*$/")],
                ),
                *(
                    NagPackSuppression(
                        id=rule,
                        reason="One statement for this role alone, apart from its default policy only to break the "
                        "function <-> policy dependency cycle; a managed policy would be reusable where it must not.",
                    )
                    for rule in ("NIST.800.53.R5-IAMNoInlinePolicy", "HIPAA.Security-IAMNoInlinePolicy")
                ),
            ],
        )

    @property
    def start_arn(self) -> str:
        """What the worker invokes: the alias's qualified ARN (SUMMARIZE_FUNCTION_ARN)."""
        return self.alias.function_arn

    def grant_start(self, role: iam.IRole) -> None:
        """lambda:InvokeFunction on the alias only (not $LATEST, not another version)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StartSummarizeWorkflow", actions=["lambda:InvokeFunction"], resources=[self.alias.function_arn]
            )
        )
