"""Static web hosting: private S3 bucket behind CloudFront (origin access control, WAF, security headers).

Deployed before the API stacks, so that they can allow exactly this site's origin (CORS). The UI's files
and its config.json are written after them, by WebContentStack (stacks/web_content_stack.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.access_logs import access_logs_bucket
from stacks.constructs.nag import skip_checkov, suppress
from stacks.csp import content_security_policy
from stacks.edge_stack import cloudfront_web_acl


def connect_sources(config: AppConfig, *, api_hosts: Sequence[str] | None = None) -> list[str]:
    """What the web client fetches besides its own files: Cognito's endpoint in the region it signs in to,
    and both regional APIs. Without `api_hosts` (the CloudFront header, fixed before the APIs exist) the
    APIs are `*.execute-api` in the two configured regions; with them, exactly their hosts."""
    cognito = f"https://cognito-idp.{config.primary_region}.{Aws.URL_SUFFIX}"
    apis = api_hosts or [f"https://*.execute-api.{region}.{Aws.URL_SUFFIX}" for region in config.regions]
    # Document uploads go straight to a region's documents bucket (a presigned POST). The header is fixed
    # before those buckets exist, so it names S3 in our two regions; index.html's meta tag names the buckets.
    uploads = [] if api_hosts or not config.knowledge.enabled else [
        f"https://*.s3.{region}.{Aws.URL_SUFFIX}" for region in config.regions
    ]  # fmt: skip
    return [cognito, *apis, *uploads]


class WebStack(Stack):
    """`web_acl_arn`: CloudFront's web ACL from the Edge stack; without it this stack (which must then be
    in us-east-1) creates the ACL itself. `key` encrypts the log groups this stack creates.
    `site_origin` (https://<distribution domain>) is what the API stacks allow as CORS origin."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        key: kms.IKey,
        web_acl_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = access_logs_bucket(
            self,
            "AccessLogs",
            retention_days=config.log_retention_days,
            logged="the site bucket and CloudFront",
            cloudfront=True,  # CloudFront standard logging writes with ACLs, so this bucket must accept them
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
        suppress(
            self.bucket,
            "Holds public static web assets, no customer data: SSE-S3 is sufficient and avoids KMS calls on "
            "every CloudFront fetch.",
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
            "HIPAA.Security-S3DefaultEncryptionKMS",
        )
        suppress(
            self.bucket,
            "Rebuilt from source by cdk deploy in any region; cross-region replication of these objects would "
            "add cost without improving recovery.",
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
                # The API ids do not exist yet when this header is fixed: *.execute-api in our two regions
                # here, and index.html's CSP meta tag (WebContentStack) narrows connect-src to exactly them.
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(connect=connect_sources(config)),
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

        self.site_origin = f"https://{self.distribution.distribution_domain_name}"
        CfnOutput(self, "SiteUrl", value=self.site_origin)
        CfnOutput(self, "SiteBucket", value=self.bucket.bucket_name)
