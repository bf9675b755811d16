"""Users for a running sandbox: created in its user pool, confirmed, and signed in (load tests, concurrency tests)."""

from __future__ import annotations

from typing import Any

import boto3


def signed_in_users(sandbox: Any, count: int, *, prefix: str, password: str) -> list[str]:
    """ID tokens of `count` new users `<prefix>-<n>@bulwark.local`, each with a verified email and `password`
    set as permanent (no first-sign-in challenge), signed in with USER_PASSWORD_AUTH."""
    cognito = boto3.client("cognito-idp", endpoint_url=sandbox.aws_url, region_name=sandbox.region)
    tokens = []
    for index in range(count):
        username = f"{prefix}-{index}@bulwark.local"
        cognito.admin_create_user(
            UserPoolId=sandbox.user_pool_id,
            Username=username,
            UserAttributes=[{"Name": "email", "Value": username}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
        cognito.admin_set_user_password(
            UserPoolId=sandbox.user_pool_id, Username=username, Password=password, Permanent=True
        )
        auth = cognito.initiate_auth(
            ClientId=sandbox.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        tokens.append(str(auth["AuthenticationResult"]["IdToken"]))
    return tokens
