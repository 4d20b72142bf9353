"""JWT bearer tokens from an operator's identity provider, over real HTTP: a valid EdDSA token
lets its agent pay through a real MCP client; every hostile token is a plain 401 whose audit
record names the reason (never the token)."""

import asyncio
import base64
import json
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client import http_client, ok
from test_credentials import mcp_status
from test_lifecycle import restarted_with

ISSUER = "https://idp.example.test"
AUDIENCE = "clawfirst-e2e"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks(key: Ed25519PrivateKey, kid: str) -> dict:
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(public), "kid": kid, "alg": "EdDSA"}


def token(key, claims: dict, kid: str = "k1", alg: str = "EdDSA") -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-agent", "exp": now + 300, **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def unsigned(claims: dict) -> str:
    now = int(time.time())
    header = b64url(json.dumps({"alg": "none", "kid": "k1", "typ": "JWT"}).encode())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-agent", "exp": now + 300, **claims}
    return f"{header}.{b64url(json.dumps(body).encode())}."


def test_jwt_bearer_tokens_admit_their_agent_and_nothing_else(tmp_path):
    key = Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()
    data = tmp_path / "data"
    data.mkdir()
    (data.parent / "jwks.json").write_text(json.dumps({"keys": [jwks(key, "k1")]}))
    section = (
        "[auth.jwt]\n"
        f'issuers = ["{ISSUER}"]\naudience = "{AUDIENCE}"\nalgorithms = ["EdDSA"]\n'
        'jwks_file = "../jwks.json"\nleeway_seconds = 5\n\n[stdio]\n'
    )
    stack = restarted_with(data, ("[stdio]\n", section))
    try:
        good = token(key, {})
        assert mcp_status(stack, good) == 200

        async def pays():
            async with http_client(stack.url, good) as c:
                await ok(c, "x402.query_balance", {})

        asyncio.run(pays())

        now = int(time.time())
        public_raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        body, payload, signature = good.split(".")
        hostile = {
            "jwt_alg_not_allowed": [
                unsigned({}),
                jwt.encode(
                    {"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-agent", "exp": now + 300},
                    public_raw,
                    algorithm="HS256",
                    headers={"kid": "k1"},
                ),
            ],
            "jwt_expired": [token(key, {"exp": now - 60})],
            "jwt_not_yet_valid": [token(key, {"nbf": now + 600})],
            "jwt_wrong_audience": [token(key, {"aud": "another-service"})],
            "jwt_wrong_issuer": [token(key, {"iss": "https://evil.example"})],
            "jwt_unknown_kid": [token(key, {}, kid="k2")],
            "jwt_bad_signature": [token(other, {}), f"{body}.{payload}.{signature[:-4]}AAAA"],
            "unknown agent": [token(key, {"sub": "nobody"})],
        }
        for reason, tokens in hostile.items():
            for bad in tokens:
                assert mcp_status(stack, bad) == 401, (reason, bad)

        audit = stack.admin("GET", "/audit?limit=10000")[1]["records"]
        seen = {
            r["details"]["reason"]
            for r in audit
            if r["event"] == "auth.failed" and r["details"]["method"] == "jwt"
        }
        assert set(hostile) <= seen, seen
        text = json.dumps(audit)
        assert good not in text and signature not in text
    finally:
        stack.stop()
