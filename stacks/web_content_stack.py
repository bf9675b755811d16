"""The web UI's files and its runtime config, written into a site bucket after both API stacks exist: one stack
per region, each writing the same files from source into its own region's bucket (the distribution's origin
group serves the primary's and fails over to the DR's, stacks/web_stack.py). The DR one also holds the DR bucket's
policy, which names the distribution, and invalidates nothing: the primary one, deployed after it, does.

config.json names both regional API URLs and the Cognito ids; index.html gets a Content-Security-Policy
meta tag whose connect-src lists exactly the two API hosts, Cognito's and, with knowledge, the documents buckets'
hosts the browser uploads to with the API's presigned POST (the CloudFront header, fixed
before the APIs exist, can only name *.execute-api in the two regions: browsers enforce both policies,
so the narrower one decides). The site itself (bucket, CloudFront) is WebStack, deployed before the APIs.

fallback.html is the static help page the UI switches to when neither region's API answers (web/outage.js):
its meta tag narrows connect-src further (no documents buckets: it only probes the APIs' public /health), and
curated.json, the operators' answers it shows, is web/curated.json validated here, so a malformed file fails
synth with a sentence instead of an empty page in an outage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import Aws, ReferenceStrength, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.config import AppConfig
from stacks.constructs.nag import skip_checkov, suppress_cdk_provider
from stacks.constructs.python_function import log_retention
from stacks.csp import connect_only_policy
from stacks.web_stack import dr_site_policy

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
_CHARSET = '<meta charset="utf-8">'


CURATED_FILE = WEB_DIR / "curated.json"
MAX_CURATED = 200  # entries: the static page lists them all
MAX_QUESTION = 500  # characters; web/outage.js drops longer entries, so synth refuses them first
MAX_ANSWER = 4000


def page_with_csp(name: str, *, connect: Sequence[str]) -> str:
    """web/<name> with a CSP meta tag (connect-src only) right after the charset, before any script."""
    page = (WEB_DIR / name).read_text()
    if _CHARSET not in page:
        raise ValueError(f"web/{name} must start its <head> with {_CHARSET}: the CSP meta tag goes after it")
    policy = connect_only_policy(connect=connect).replace("&", "&amp;").replace('"', "&quot;")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    return page.replace(_CHARSET, f"{_CHARSET}\n  {meta}", 1)


def index_html(*, connect: Sequence[str]) -> str:
    return page_with_csp("index.html", connect=connect)


def curated_answers(path: Path = CURATED_FILE) -> dict[str, Any]:
    """The operators' curated answers as deployed: {"answers": [{"question", "answer"}...]}, checked entry by
    entry (ValueError names the file and the entry)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path.name}: not readable JSON ({error})") from error
    answers = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(answers, list) or not answers:
        raise ValueError(f'{path.name}: expected {{"answers": [{{"question": ..., "answer": ...}}, ...]}}, non-empty')
    if len(answers) > MAX_CURATED:
        raise ValueError(f"{path.name}: {len(answers)} answers, at most {MAX_CURATED}")
    cleaned = []
    for number, entry in enumerate(answers, start=1):
        where = f"{path.name}: answer {number}"
        if not isinstance(entry, dict) or set(entry) != {"question", "answer"}:
            raise ValueError(f"{where} must have exactly the keys question and answer")
        for key, limit in (("question", MAX_QUESTION), ("answer", MAX_ANSWER)):
            value = entry[key]
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: {key} must be non-empty text")
            if len(value) > limit:
                raise ValueError(f"{where}: {key} has {len(value)} characters, at most {limit}")
        cleaned.append({"question": entry["question"].strip(), "answer": entry["answer"].strip()})
    return {"answers": cleaned}


def upload_hosts(buckets: Sequence[s3.IBucket], *, region: str, weak_from: str) -> list[str]:
    """The hosts a presigned POST to each documents bucket may name: its regional virtual-hosted name and the
    legacy global one, which botocore signs unless the client asks for the regional endpoint. Both name only
    this bucket. `region`: the reading stack's; a bucket in another region `weak_from` (the DR region) is read
    weakly (Fn::GetStackOutput at this stack's deploy), so the DR Knowledge stack holds no writer into this region
    (static stability). The DR stack reads the primary's bucket through CDK's reader in its own region."""
    hosts: list[str] = []
    for bucket in buckets:
        bucket_region = Stack.of(bucket).region
        name = bucket.bucket_name
        if bucket_region != region and bucket_region == weak_from:
            cfn = bucket.node.default_child  # the L2's name is wrapped: consume_reference needs the attribute
            if not isinstance(cfn, s3.CfnBucket):
                raise ValueError(f"{bucket.node.path}: another region's documents bucket must be a Bucket defined here")
            name = Stack.consume_reference(cfn.ref, ReferenceStrength.WEAK)
        hosts += [
            f"https://{name}.s3.{bucket_region}.{Aws.URL_SUFFIX}",
            f"https://{name}.s3.{Aws.URL_SUFFIX}",
        ]
    return hosts


class WebContentStack(Stack):
    """`connect`: the exact hosts the UI may fetch from (both API hosts, Cognito's endpoint).
    `documents_buckets`: each region's documents bucket (KnowledgeStack.bucket), which the browser uploads to.
    `stream_hosts`: both regions' WebSocket API hosts (wss://...) for streamed answers; the static help page gets
    none.
    `distribution`: invalidated after the files are written (the primary stack's, deployed last).
    `failover_for`: the DR stack's: its bucket is this distribution's failover origin, and this stack holds the
    bucket's policy (dr_site_policy)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        bucket: s3.IBucket,
        runtime_config: dict[str, Any],
        connect: Sequence[str],
        key: kms.IKey,
        documents_buckets: Sequence[s3.IBucket] = (),
        stream_hosts: Sequence[str] = (),
        distribution: cloudfront.IDistribution | None = None,
        failover_for: cloudfront.IDistribution | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if failover_for is not None:
            dr_site_policy(self, "SitePolicy", bucket=bucket, distribution_id=failover_for.distribution_id)
        # The static help page only probes the APIs' /health: no documents buckets in its connect-src.
        fallback_connect = list(connect)
        connect = [
            *connect,
            *upload_hosts(documents_buckets, region=self.region, weak_from=config.dr_region),
            *stream_hosts,  # the WebSocket APIs (wss://), ADR 0004: https: sources do not match wss:
        ]
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
            # The pages and config.json carry deploy-time values (API hosts and URLs, Cognito ids);
            # curated.json is the validated web/curated.json.
            sources=[
                s3deploy.Source.asset(
                    str(WEB_DIR),
                    # status.html/.js: the sandbox's status page (make dev's /_sandbox/status), never deployed.
                    exclude=["index.html", "fallback.html", "config.json", "curated.json", "status.html", "status.js"],
                ),
                s3deploy.Source.data("index.html", index_html(connect=connect)),
                s3deploy.Source.data("fallback.html", page_with_csp("fallback.html", connect=fallback_connect)),
                s3deploy.Source.json_data("config.json", runtime_config),
                s3deploy.Source.json_data("curated.json", curated_answers()),
            ],
            destination_bucket=bucket,
            distribution=distribution,
            distribution_paths=["/*"] if distribution else None,
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
        if distribution is None:
            return  # no invalidation: the provider's role names only the asset and site buckets
        default_policy = deployment.handler_role.node.find_child("DefaultPolicy")
        skip_checkov(
            default_policy,
            "aws-cdk-lib grants CDK's BucketDeployment provider cloudfront:CreateInvalidation/GetInvalidation on "
            "'*' (its S3 writes are scoped to the site bucket); an invalidation only expires cached copies and "
            "cannot change content or configuration.",
            "CKV_AWS_111",
        )
