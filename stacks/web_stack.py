"""Static web hosting: private S3 bucket behind CloudFront (origin access control, WAF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import skip_checkov, suppress, suppress_cdk_provider
from stacks.constructs.python_function import log_retention
from stacks.edge_stack import cloudfront_web_acl

WEB_DIR = Path(__file__).resolve().parents[1] / "web"


class WebStack(Stack):
    """`web_acl_arn`: CloudFront's web ACL from the Edge stack; without it this stack (which must then be
    in us-east-1) creates the ACL itself. `key` encrypts the log groups this stack creates."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        runtime_config: dict[str, Any],
        key: kms.IKey,
        web_acl_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            # CloudFront standard logging writes with ACLs, so this bucket must accept them.
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.log_retention_days))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        suppress(
            access_logs,
            "This bucket is the access-log destination; logging it into itself would loop.",
            "AwsSolutions-S1",
            "NIST.800.53.R5-S3BucketLoggingEnabled",
            "HIPAA.Security-S3BucketLoggingEnabled",
        )
        skip_checkov(
            access_logs,
            "This bucket is the access-log destination for the site bucket and CloudFront; logging it into "
            "itself would loop.",
            "CKV_AWS_18",
        )
        self.bucket = s3.Bucket(
            self,
            "Site",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="s3/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        for bucket in (access_logs, self.bucket):
            suppress(
                bucket,
                "Holds public static web assets or access logs, no customer data: SSE-S3 is sufficient "
                "and avoids KMS calls on every CloudFront fetch.",
                "NIST.800.53.R5-S3DefaultEncryptionKMS",
                "HIPAA.Security-S3DefaultEncryptionKMS",
            )
            suppress(
                bucket,
                "Rebuilt from source by cdk deploy in any region; cross-region replication of these "
                "objects would add cost without improving recovery.",
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "HIPAA.Security-S3BucketReplicationEnabled",
            )

        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, preload=True, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override=True
                ),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=(
                        "default-src 'self'; connect-src 'self' https://*.amazonaws.com; "
                        "img-src 'self' data:; style-src 'self'; script-src 'self'; "
                        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
                    ),
                    override=True,
                ),
            ),
        )
        if web_acl_arn is None:
            web_acl_arn = cloudfront_web_acl(self, "CdnWebAcl", config=config, key=key).arn
        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
            web_acl_id=web_acl_arn,
            default_root_object="index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=access_logs,
            log_file_prefix="cloudfront/",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                response_headers_policy=headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
        )
        suppress(
            self.distribution,
            "A global chat app: no geography is excluded by default; add geo_restriction per deployment.",
            "AwsSolutions-CFR1",
        )
        no_custom_domain = (
            "No custom domain is configured, so the distribution uses the default *.cloudfront.net "
            "certificate, whose TLS floor CloudFront fixes; set a domain and certificate to enforce TLSv1.2_2021."
        )
        suppress(self.distribution, no_custom_domain, "AwsSolutions-CFR4")
        skip_checkov(self.distribution, no_custom_domain, "CKV_AWS_174")

        deploy_logs = logs.LogGroup(
            self,
            "DeployLogs",
            retention=log_retention(config.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            # The UI's runtime config (both regions' API URLs, Cognito ids) from stack outputs.
            sources=[s3deploy.Source.asset(str(WEB_DIR)), s3deploy.Source.json_data("config.json", runtime_config)],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            log_group=deploy_logs,
        )
        provider_id = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C"
        suppress_cdk_provider(
            self,
            f"/{self.stack_name}/{provider_id}",
            "BucketDeployment provider (copies the web assets and config.json to the bucket)",
            "AwsSolutions-IAM5",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
        )
        provider = self.node.find_child(provider_id)
        for check, reason in {
            "CKV_AWS_115": "CDK's BucketDeployment provider runs only when CloudFormation deploys this stack, one "
            "invocation per change; a reserved-concurrency limit would only make deploys fail.",
            "CKV_AWS_116": "CDK's BucketDeployment provider is invoked synchronously by CloudFormation, which reports "
            "a failure and rolls back; a DLQ only receives asynchronous invocations.",
            "CKV_AWS_117": "CDK's BucketDeployment provider copies assets between S3 buckets and invalidates "
            "CloudFront through public AWS APIs with IAM; it reaches no private resource, so a VPC would add NAT "
            "or endpoint cost without narrowing its access.",
            "CKV_AWS_173": "The only environment variable of CDK's BucketDeployment provider is AWS_CA_BUNDLE, a "
            "public file path; Lambda encrypts it at rest with its service key, no secret is stored.",
        }.items():
            skip_checkov(provider, reason, check)
        default_policy = deployment.handler_role.node.find_child("DefaultPolicy")
        skip_checkov(
            default_policy,
            "aws-cdk-lib grants CDK's BucketDeployment provider cloudfront:CreateInvalidation/GetInvalidation on "
            "'*' (its S3 writes are scoped to the site bucket); an invalidation only expires cached copies and "
            "cannot change content or configuration.",
            "CKV_AWS_111",
        )
        CfnOutput(self, "SiteUrl", value=f"https://{self.distribution.distribution_domain_name}")
        CfnOutput(self, "SiteBucket", value=self.bucket.bucket_name)
