"""Static web hosting: private S3 bucket behind CloudFront with origin access control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import suppress, suppress_cdk_provider

WEB_DIR = Path(__file__).resolve().parents[1] / "web"


class WebStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        runtime_config: dict[str, Any],
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
        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
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
        suppress(
            self.distribution,
            "Serves only public static files; the API, where data lives, has its own regional WAF. A "
            "CLOUDFRONT-scope web ACL must live in us-east-1 and is left to deployments that need it.",
            "AwsSolutions-CFR2",
        )
        suppress(
            self.distribution,
            "No custom domain is configured, so the distribution uses the default *.cloudfront.net "
            "certificate, whose TLS floor CloudFront fixes; set a domain and certificate to enforce TLSv1.2_2021.",
            "AwsSolutions-CFR4",
        )

        s3deploy.BucketDeployment(
            self,
            "Deploy",
            # The UI's runtime config (both regions' API URLs, Cognito ids) from stack outputs.
            sources=[s3deploy.Source.asset(str(WEB_DIR)), s3deploy.Source.json_data("config.json", runtime_config)],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
        )
        suppress_cdk_provider(
            self,
            f"/{self.stack_name}/Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C",
            "BucketDeployment provider (copies the web assets and config.json to the bucket)",
            "AwsSolutions-IAM5",
            "NIST.800.53.R5-IAMNoInlinePolicy",
            "HIPAA.Security-IAMNoInlinePolicy",
            "NIST.800.53.R5-CloudWatchLogGroupEncrypted",
            "HIPAA.Security-CloudWatchLogGroupEncrypted",
        )
        CfnOutput(self, "SiteUrl", value=f"https://{self.distribution.distribution_domain_name}")
        CfnOutput(self, "SiteBucket", value=self.bucket.bucket_name)
