"""web/srp.js (the web UI's Cognito SRP sign-in) run by Node: against a known answer from an independent
implementation, and against a server-side SRP verifier written here from the protocol (what Cognito checks).

moto, the sandbox's embedded AWS, does not verify SRP at all (its PASSWORD_VERIFIER accepts any signature):
these tests are where the math is proven.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
G = 2

# Produced by pycognito 2024.5.1 (aws_srp.AWSSRP, an SRP client in wide use against Cognito), with a fixed
# secret `a` and a server value B computed for this password: the same inputs must give the same signature.
KNOWN_ANSWER = {
    "poolId": "us-east-1_Ab3dEfGh1",
    "userId": "7c1e8a52-3b0d-4f6e-9a1c-2d4b6f8e0a13",
    "password": "Correct-Horse-9!\u00dcn\u00efcode",
    "a": (
        "68571817c96c5c832ddf3f4ecb1ee43a0c9dafb8a5a7dde379eb50a294cc3aa42f8fe63a6224321de5d0a24cf30067d3"
        "7a358706b1ed38b015282ab68dc69ae9d72e654c3645b02dde39fe0be595ef173409544f6e10ea1164759d6c284dbade"
        "2cb72cc6837572f49baf91e463c75685f5befc1a4fc1bc8533a7f5619ef2c34f"
    ),
    "srpB": (
        "777c8dabade0d2cec7dd9e9b1fe59dc678b79a911bdeb586076a44d4099f53d32a363fa51f6dd3f3d86c3634f6ede140"
        "4187ccbb481d5363b2f3160cd47967c9bae6dd125ceb88b36ea77c92b0d140a17685656594b784885d72a2b434694ded"
        "8e6edd5ba91ab12161363bbd5a955db7b641cf86de45780047e3f06236b1e845a028622da3986a0d8ea18c866282a079"
        "09db9f1434addccf91a611c3134067d559ffd245ceb1f00a97bb9ad903ec822df379cab2af54aca9072d3ded7305fd34"
        "bc81bd3295337c46f83c6b6fae25871d7d48af1893580567bb7b5089551643589475d85b3eb1939244ed0cb6eb905d3a"
        "6595f4d8c34b1158f859cc695edac0fa9a921711032eb405d193a82b829a13279fa085ef16b16714db5eae904205d8e9"
        "cf60e67158b0629c081af4d608c7a00a4b3332fc9db3954f5bb2a15cdce873df38f547f8bb880fee0cac86c146ea3f0f"
        "5a0c15610a504ce914e44ebea67566a46540e5a73e828596d506bff9afcb7a7d27d5bb6098834c9699341041d4c84bd"
    ),
    "salt": "f1726c91b8c845da8bbf8e22abc7ee89",
    "secretBlock": (
        "SJShlnqjR2V6mcS7pKIV0JB/2zTpNm0FdlbobP0MOX5IlKGWeqNHZXqZxLukohXQ"
        "kH/bNOk2bQV2Vuhs/Qw5fkiUoZZ6o0dlepnEu6SiFdCQf9s06TZtBXZW6Gz9DDl+"
    ),
    "now": "2026-03-05T04:07:09Z",
    "timestamp": "Thu Mar 5 04:07:09 UTC 2026",
    "signature": "gaKZDK2YDtzC2RD+bWakgKeB1UJVU1sDCcyciWL83GM=",
}

# A Node process that keeps the client's secret between the two steps, as the browser does.
_DRIVER = """
import { createInterface } from "node:readline";
import { newSrpSecret, passwordClaim } from "./srp.mjs";
const lines = createInterface({ input: process.stdin });
let secret = null;
for await (const line of lines) {
  const request = JSON.parse(line);
  let answer;
  if (request.step === "start") {
    secret = newSrpSecret();
    answer = { srpA: secret.srpA };
  } else {
    const a = request.a ? BigInt("0x" + request.a) : secret.a;
    answer = await passwordClaim({ ...request, a, now: request.now ? new Date(request.now) : new Date() });
  }
  console.log(JSON.stringify(answer));
}
"""


class SrpClient:
    """web/srp.js in Node, one JSON request per line."""

    def __init__(self, workdir: Path) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed: `make install` needs it for the CDK CLI")
        shutil.copy(ROOT / "web" / "srp.js", workdir / "srp.mjs")
        (workdir / "driver.mjs").write_text(_DRIVER)
        self.process = subprocess.Popen(
            [node, "driver.mjs"], cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the Node driver exited"
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[SrpClient]:
    running = SrpClient(tmp_path)
    yield running
    running.close()


def _pad(n: int) -> bytes:
    """A number as Cognito hashes it: big-endian two's complement (a 0x00 in front when the top bit is set)."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def _h(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


class CognitoSrpServer:
    """The server side of USER_SRP_AUTH for one user: the verifier v = g^x, then B = k*v + g^b."""

    def __init__(self, *, pool_id: str, user_id: str, password: str) -> None:
        self.pool_name = pool_id.split("_")[1]
        self.user_id = user_id
        self.salt = secrets.randbits(128)
        identity = hashlib.sha256(f"{self.pool_name}{user_id}:{password}".encode()).hexdigest()
        x = _h(_pad(self.salt) + bytes.fromhex(identity))
        self.v = pow(G, x, N)
        self.k = _h(_pad(N) + _pad(G))
        self.b = secrets.randbits(256)
        self.big_b = (self.k * self.v + pow(G, self.b, N)) % N
        self.secret_block = base64.b64encode(secrets.token_bytes(64)).decode()

    def challenge(self) -> dict[str, str]:
        return {"srpB": f"{self.big_b:x}", "salt": f"{self.salt:x}", "secretBlock": self.secret_block}

    def expected_signature(self, srp_a: str, timestamp: str) -> str:
        big_a = int(srp_a, 16)
        assert big_a % N != 0
        u = _h(_pad(big_a) + _pad(self.big_b))
        s = pow(big_a * pow(self.v, u, N), self.b, N)
        prk = hmac.new(_pad(u), _pad(s), hashlib.sha256).digest()
        key = hmac.new(prk, b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]
        message = (
            self.pool_name.encode() + self.user_id.encode() + base64.b64decode(self.secret_block) + timestamp.encode()
        )
        return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def test_the_constants_are_cognitos_group_and_multiplier() -> None:
    assert N.bit_length() == 3072 and pow(2, N - 1, N) == 1  # a typo in the prime would fail Fermat's test
    assert f"{_h(_pad(N) + _pad(G)):x}" == "538282c4354742d7cbbde2359fcf67f9f5b3a6b08791e5011b43b8a5b66d9ee6"


def test_the_claim_matches_an_independent_implementation(client: SrpClient) -> None:
    answer = client.ask(step="claim", **{k: v for k, v in KNOWN_ANSWER.items() if k not in ("timestamp", "signature")})

    assert answer == {"signature": KNOWN_ANSWER["signature"], "timestamp": KNOWN_ANSWER["timestamp"]}


def test_a_cognito_style_server_accepts_the_proof_and_refuses_a_wrong_password(client: SrpClient) -> None:
    for attempt in range(3):  # fresh secrets each time: leading-zero and top-bit paddings vary
        user_id = f"user-{attempt}-{secrets.token_hex(4)}"
        server = CognitoSrpServer(pool_id="eu-west-1_Pool9", user_id=user_id, password="Right-Passw0rd!")
        srp_a = client.ask(step="start")["srpA"]
        common = {"step": "claim", "poolId": "eu-west-1_Pool9", "userId": user_id, **server.challenge()}

        right = client.ask(**common, password="Right-Passw0rd!")
        wrong = client.ask(**common, password="Wrong-Passw0rd!")

        assert right["signature"] == server.expected_signature(srp_a, right["timestamp"])
        assert wrong["signature"] != server.expected_signature(srp_a, wrong["timestamp"])


@pytest.mark.parametrize(
    ("now", "expected"),
    [("2026-11-22T09:05:03Z", "Sun Nov 22 09:05:03 UTC 2026"), ("2027-01-01T23:59:59Z", "Fri Jan 1 23:59:59 UTC 2027")],
)
def test_the_timestamp_is_cognitos_format(client: SrpClient, now: str, expected: str) -> None:
    server = CognitoSrpServer(pool_id="us-east-1_P", user_id="u", password="p")
    srp_a = client.ask(step="start")["srpA"]
    answer = client.ask(step="claim", poolId="us-east-1_P", userId="u", password="p", now=now, **server.challenge())
    assert answer["timestamp"] == expected
    assert answer["signature"] == server.expected_signature(srp_a, expected)
