"""A WAF web ACL: rate limit per client IP, AWS managed rule groups, logging with credentials redacted."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.constructs.nag import skip_checkov

# Headers that carry credentials never reach the WAF logs (an ID token holds the user's email).
REDACTED_HEADERS = ("authorization", "cookie")
# In front of an application that reads requests (the API, Cognito): reputation, common exploits, known bad inputs.
APPLICATION_GROUPS = ("AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesCommonRuleSet",
                      "AWSManagedRulesKnownBadInputsRuleSet")  # fmt: skip
# In front of static files in S3 (the site): nothing parses a query or a body, so the exploit groups guard
# nothing there; the rate rule and the reputation list keep floods and known-bad sources off the bill.
STATIC_GROUPS = ("AWSManagedRulesAmazonIpReputationList",)


class WebAcl(Construct):
    """Scope REGIONAL (API Gateway stages) or CLOUDFRONT (created in us-east-1 only, as AWS requires)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        acl_scope: str,
        rate_limit_per_5min: int,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        common_rules_count_only: tuple[str, ...] = (),
        managed_groups: tuple[str, ...] = APPLICATION_GROUPS,
    ) -> None:
        """`managed_groups`: AWS managed rule groups after the rate rule (each costs $1 a month)."""
        super().__init__(scope, construct_id)
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerIp",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=rate_limit_per_5min, evaluation_window_sec=300
                    )
                ),
                visibility_config=_visibility("RatePerIp"),
            )
        ]
        for priority, group in enumerate(managed_groups, start=1):
            count_only = common_rules_count_only if group == "AWSManagedRulesCommonRuleSet" else ()
            rules.append(_managed(group, priority, count_only))
        self.acl = wafv2.CfnWebACL(
            self,
            "Acl",
            scope=acl_scope,
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{acl_scope.lower()}-acl"),
            rules=rules,
        )
        if "AWSManagedRulesKnownBadInputsRuleSet" not in managed_groups:
            skip_checkov(
                self.acl,
                "In front of static files in S3 only (STATIC_GROUPS): no Log4j or any other code reads the request "
                "behind this ACL, so the known-bad-inputs group ($1 a month) would guard nothing.",
                "CKV_AWS_192",
            )
        stack = Stack.of(self)
        # WAF requires its log group's name to start with aws-waf-logs-.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"aws-waf-logs-{stack.stack_name}-{acl_scope.lower()}",
            retention=log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.acl.attr_arn,
            log_destination_configs=[
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=self.log_group.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )

    @property
    def arn(self) -> str:
        return self.acl.attr_arn

    def associate(self, resource_arn: str) -> None:
        """Attach to a regional resource (an API Gateway stage); CloudFront takes the ARN instead."""
        wafv2.CfnWebACLAssociation(self, "Association", resource_arn=resource_arn, web_acl_arn=self.acl.attr_arn)


def _managed(name: str, priority: int, count_only: tuple[str, ...]) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in count_only
                ]
                or None,
            )
        ),
        visibility_config=_visibility(name),
    )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
