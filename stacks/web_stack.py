"""Static web hosting: private S3 buckets in both regions behind one CloudFront distribution (origin access
control, WAF, security headers).

Deployed before the API stacks, so that they can allow exactly this site's origin (CORS). The UI's files
and its config.json are written after them, by WebContentStack (stacks/web_content_stack.py), into both buckets.

Regional outage: the distribution's one origin is an origin group, the primary region's site bucket first and
the DR region's (WebDrStack) as failover. CloudFront asks the DR bucket, for that request, when the primary
answers 500, 502, 503 or 504, when it answers 403 or 404 (what S3 returns for a missing object, so a primary
bucket emptied or half written also fails over) or when it cannot connect or times out. No health check and no
switch: every cache miss tries the primary first, so service comes back by itself with the primary region.
Origin groups fail over GET/HEAD/OPTIONS only, which is all a static site needs (the APIs fail over in the
client, web/app.js). Both buckets are read through origin access control and each bucket's policy allows this
distribution only; both hold the same files, deployed from source into each region (no replication), so the
DR copy does not depend on the primary region being up, and the static help page (fallback.html) survives it.

Deploy order across regions, with no cycle and no DR stack reading the primary region: WebDrStack (the DR
bucket) -> WebStack (reads the DR bucket's name at its own deploy, Fn::GetStackOutput) -> the DR WebContent
stack, which holds the DR bucket's policy (it names the distribution, read from this region's SSM parameter
that CDK's writer in this stack put there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Annotations, Aws, CfnOutput, Duration, ReferenceStrength, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
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
    if not api_hosts and config.streaming.enabled:
        # The WebSocket APIs (ADR 0004): CSP's https: sources do not match wss: URLs, so they are named apart.
        apis = [*apis, *(f"wss://*.execute-api.{region}.{Aws.URL_SUFFIX}" for region in config.regions)]
    # Document uploads go straight to a region's documents bucket (a presigned POST). The header is fixed
    # before those buckets exist, so it names S3 in our two regions; index.html's meta tag names the buckets.
    uploads = [] if api_hosts or not config.knowledge.enabled else [
        f"https://*.s3.{region}.{Aws.URL_SUFFIX}" for region in config.regions
    ]  # fmt: skip
    return [cognito, *apis, *uploads]


# What makes CloudFront ask the DR bucket (besides connection failures and timeouts): S3's server errors, and
# 403/404, which S3 answers for an object that is missing (403 when the reader may not list the bucket).
FAILOVER_STATUS_CODES = (500, 502, 503, 504, 403, 404)


def site_bucket(scope: Construct, construct_id: str, *, access_logs: s3.IBucket, enforce_ssl: bool) -> s3.Bucket:
    """A site bucket, the same in both regions: private, versioned, SSE-S3, access-logged, retained.
    `enforce_ssl=False` only where the bucket's policy (with the TLS-only statement) lives in another stack."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=enforce_ssl,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="s3/",
        removal_policy=RemovalPolicy.RETAIN,
    )
    suppress(
        bucket,
        "Holds public static web assets, no customer data: SSE-S3 is sufficient and avoids KMS calls on "
        "every CloudFront fetch.",
        "NIST.800.53.R5-S3DefaultEncryptionKMS",
        "HIPAA.Security-S3DefaultEncryptionKMS",
    )
    suppress(
        bucket,
        "Each region's site bucket is written from source by its own WebContent stack (the same files in both), "
        "so the DR copy does not depend on the primary region; replication would add a second writer.",
        "NIST.800.53.R5-S3BucketReplicationEnabled",
        "HIPAA.Security-S3BucketReplicationEnabled",
    )
    return bucket


def dr_site_policy(scope: Construct, construct_id: str, *, bucket: s3.IBucket, distribution_id: str) -> s3.BucketPolicy:
    """The DR site bucket's only policy: TLS only (as `enforce_ssl` writes it), and read by exactly this
    distribution through origin access control (as S3BucketOrigin.with_origin_access_control writes it for the
    primary bucket). It names the distribution, so it is deployed after it, in the DR WebContent stack."""
    policy = s3.BucketPolicy(scope, construct_id, bucket=bucket)
    policy.document.add_statements(
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:*"],
            resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        ),
        iam.PolicyStatement(
            effect=iam.Effect.ALLOW,
            principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects("*")],
            conditions={
                "StringEquals": {
                    "AWS:SourceArn": f"arn:{Aws.PARTITION}:cloudfront::{Aws.ACCOUNT_ID}:distribution/{distribution_id}"
                }
            },
        ),
    )
    return policy


class WebDrStack(Stack):
    """The DR region's site bucket and its access logs, deployed before WebStack (whose origin group names the
    bucket). It reads nothing from the primary region; its policy is the DR WebContent stack's."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = access_logs_bucket(
            self, "AccessLogs", retention_days=config.log_retention_days, logged="the DR site bucket"
        )
        self.bucket = site_bucket(self, "Site", access_logs=access_logs, enforce_ssl=False)
        suppress(
            self.bucket,
            "This bucket's one policy, with the TLS-only statement, is in the DR WebContent stack (dr_site_policy): "
            "it must name the CloudFront distribution, which is deployed after this bucket. Until then the bucket "
            "is empty and blocks all public access.",
            "AwsSolutions-S10",
            "NIST.800.53.R5-S3BucketSSLRequestsOnly",
            "HIPAA.Security-S3BucketSSLRequestsOnly",
        )
        CfnOutput(self, "SiteBucket", value=self.bucket.bucket_name)


class WebStack(Stack):
    """`dr_bucket`: the DR region's site bucket (WebDrStack.bucket), the origin group's failover.
    `web_acl_arn`: CloudFront's web ACL from the Edge stack; without it this stack (which must then be
    in us-east-1) creates the ACL itself. `key` encrypts the log groups this stack creates.
    `site_origin` (https://<distribution domain>) is what the API stacks allow as CORS origin."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        key: kms.IKey,
        dr_bucket: s3.IBucket,
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
        self.bucket = site_bucket(self, "Site", access_logs=access_logs, enforce_ssl=True)

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
        if web_acl_arn is None and config.cloudfront_waf:
            web_acl_arn = cloudfront_web_acl(self, "CdnWebAcl", config=config, key=key).arn
        # The DR bucket's name is read from its stack at this stack's deploy (a weak reference): the DR stack
        # holds no writer into this region. Its policy, which must name this distribution, is the DR
        # WebContent stack's (stacks/web_content_stack.py), deployed after this one.
        dr_cfn = dr_bucket.node.default_child
        if not isinstance(dr_cfn, s3.CfnBucket):
            raise ValueError(f"{dr_bucket.node.path}: the DR site bucket must be a Bucket defined in this app")
        dr_name = Stack.consume_reference(dr_cfn.ref, ReferenceStrength.WEAK)
        dr_region = Stack.of(dr_bucket).region
        dr_site = s3.Bucket.from_bucket_attributes(
            self,
            "DrSite",
            bucket_name=dr_name,
            region=dr_region,
            bucket_regional_domain_name=f"{dr_name}.s3.{dr_region}.{Aws.URL_SUFFIX}",
        )
        # One origin access control signs CloudFront's requests to both buckets (SigV4, always).
        access_control = cloudfront.S3OriginAccessControl(self, "SiteAccessControl")
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
                origin=origins.OriginGroup(
                    primary_origin=origins.S3BucketOrigin.with_origin_access_control(
                        self.bucket, origin_access_control=access_control
                    ),
                    fallback_origin=origins.S3BucketOrigin.with_origin_access_control(
                        dr_site, origin_access_control=access_control
                    ),
                    fallback_status_codes=list(FAILOVER_STATUS_CODES),
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                response_headers_policy=headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
        )
        if not config.cloudfront_waf:
            reason = (
                "cloudfront_waf is false in cdk.json (a cost choice, README 'Operations'): the distribution serves "
                "static files from S3 only, behind Shield Standard; the API and Cognito keep their regional WAF."
            )
            suppress(self.distribution, reason, "AwsSolutions-CFR2")
            skip_checkov(self.distribution, reason, "CKV_AWS_68")
        Annotations.of(self.distribution).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
            "The DR site bucket's policy allows this distribution: DR WebContent stack (dr_site_policy).",
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
