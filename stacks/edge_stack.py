"""CloudFront's web ACL. WAF accepts CLOUDFRONT-scope ACLs only in us-east-1: with the default
primary region the web stack holds it; otherwise a small Edge stack in us-east-1 does and the web
stack reads its ARN through a cross-region reference."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.python_function import log_retention
from stacks.constructs.web_acl import STATIC_GROUPS, WebAcl

EDGE_REGION = "us-east-1"


def cloudfront_web_acl(scope: Construct, construct_id: str, *, config: AppConfig, key: kms.IKey) -> WebAcl:
    """CloudFront's web ACL (scope CLOUDFRONT): the API's rate rule and redacted logging; of the managed groups
    only the IP reputation list, since the distribution serves static files only (STATIC_GROUPS)."""
    region = Stack.of(scope).region
    if not Token.is_unresolved(region) and region != EDGE_REGION:
        raise ValueError(f"a CLOUDFRONT-scope web ACL must be created in {EDGE_REGION}, not {region}")
    return WebAcl(
        scope,
        construct_id,
        acl_scope="CLOUDFRONT",
        rate_limit_per_5min=config.throttling.waf_rate_limit_per_5min,
        key=key,
        log_retention=log_retention(config.log_retention_days),
        managed_groups=STATIC_GROUPS,
    )


class EdgeStack(Stack):
    """us-east-1 only: CloudFront's web ACL when the primary region is elsewhere."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The data key lives in the primary region; the WAF log group here needs a key in this region.
        key = kms.Key(
            self,
            "LogsKey",
            description=f"{config.prefix} CloudFront WAF log encryption",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            removal_policy=RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsUse",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{self.region}:"
                        f"{Aws.ACCOUNT_ID}:*"
                    }
                },
            )
        )
        self.web_acl_arn = cloudfront_web_acl(self, "CdnWebAcl", config=config, key=key).arn
