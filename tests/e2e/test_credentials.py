"""Agent credentials through a real MCP client: rotation replaces every API key at once,
revocation shuts the agent out, and each refusal is a plain 401 that the audit trail records
with the method and reason, never the credential."""

import asyncio
import json
import urllib.error
import urllib.request

from client import KNOWN_ADDRESS, error, http_client, ok
from conftest import Stack


def mcp_status(stack: Stack, key: str) -> int:
    """The HTTP status of an MCP tools/list request made with `key`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(
        stack.url,
        data=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_rotation_and_revocation_take_effect_at_once(tmp_path):
    stack = Stack(tmp_path / "data").start()
    try:
        old_key = stack.clawfirst_json("agents", "add", "rotating")["api_key"]
        assert mcp_status(stack, old_key) == 200

        rotated = stack.clawfirst_json("agents", "rotate", "rotating")
        new_key = rotated["api_key"]
        assert rotated["revoked_api_keys"] == 1 and rotated["credential_generation"] == 1
        assert new_key != old_key
        assert mcp_status(stack, old_key) == 401
        assert mcp_status(stack, new_key) == 200

        async def pays():
            async with http_client(stack.url, new_key) as c:
                await ok(c, "x402.query_balance", {})

        asyncio.run(pays())

        revoked = stack.clawfirst_json("agents", "revoke", "rotating")
        assert revoked["status"] == "revoked"
        assert mcp_status(stack, new_key) == 401
        # Another agent is untouched.
        assert mcp_status(stack, stack.api_key) == 200

        audit = stack.admin("GET", "/audit?limit=10000")[1]["records"]
        failures = [r for r in audit if r["event"] == "auth.failed"]
        assert {r["details"]["reason"] for r in failures} >= {"revoked key"}
        assert all(r["details"]["method"] == "api_key" for r in failures)
        text = json.dumps(audit)
        for secret in (old_key, new_key):
            assert secret not in text and secret.split("_", 2)[2] not in text
        events = {r["event"] for r in audit}
        assert {"agent.rotated", "agent.revoked"} <= events
    finally:
        stack.stop()


def test_a_delegation_token_pays_within_its_limit_until_revoked_or_rotated(tmp_path):
    stack = Stack(tmp_path / "data").start()
    try:
        stack.clawfirst_json("agents", "add", "delegating")
        issued = stack.clawfirst_json(
            "agents", "token", "delegating", "--ttl", "10m", "--max-amount", "5 USDC"
        )
        token = issued["token"]
        assert token.startswith("cfdt_") and mcp_status(stack, token) == 200

        async def go():
            async with http_client(stack.url, token) as c:
                intent = {"amount": "1 USDC", "recipient": KNOWN_ADDRESS}
                await ok(c, "x402.initialize_payment", intent)
                for amount in ("6 USDC", "0.1 SOL"):
                    err = await error(
                        c,
                        "x402.initialize_payment",
                        {"amount": amount, "recipient": KNOWN_ADDRESS},
                    )
                    assert err["code"] == "POLICY_VIOLATION", err
                    assert err["details"]["rule"] == "delegation_limit"

        asyncio.run(go())

        stack.clawfirst_json("agents", "revoke-token", "delegating", issued["token_id"])
        assert mcp_status(stack, token) == 401
        second = stack.clawfirst_json("agents", "token", "delegating", "--ttl", "10m")["token"]
        assert mcp_status(stack, second) == 200
        stack.clawfirst_json("agents", "rotate", "delegating")
        assert mcp_status(stack, second) == 401

        # A tampered token is refused too.
        body, signature = token.split(".")
        assert mcp_status(stack, f"{body}x.{signature}") == 401

        audit = stack.admin("GET", "/audit?limit=10000")[1]["records"]
        reasons = {
            r["details"]["reason"]
            for r in audit
            if r["event"] == "auth.failed" and r["details"]["method"] == "delegation_token"
        }
        assert {"token_revoked", "token_from_before_rotation"} <= reasons, reasons
        assert token not in json.dumps(audit) and second not in json.dumps(audit)
    finally:
        stack.stop()


def test_hostile_requests_are_401_with_their_reason_audited(tmp_path):
    """A table of hostile requests on the MCP endpoint and the admin and approval APIs: each is
    a plain 401, and each leaves an `auth.failed` record naming the method and the reason but
    never the credential. (JWTs have their own table in test_jwt.py, certificates in
    test_mtls.py.)"""
    stack = Stack(tmp_path / "data").start()
    try:
        mine = stack.clawfirst_json("agents", "add", "victim")["api_key"]
        theirs = stack.clawfirst_json("agents", "add", "attacker")["api_key"]
        revoked_key = stack.clawfirst_json("agents", "add", "gone")["api_key"]
        stack.clawfirst_json("agents", "revoke", "gone")
        stale = stack.clawfirst_json("agents", "token", "victim", "--ttl", "10m")
        stack.clawfirst_json("agents", "rotate", "victim")
        revoked = stack.clawfirst_json("agents", "token", "attacker", "--ttl", "10m")
        stack.clawfirst_json("agents", "revoke-token", "attacker", revoked["token_id"])

        # The victim's lookup id with the attacker's secret: another agent's key material.
        # (The secret is base64url, which may itself contain "_": split at the first two only.)
        spliced = "_".join(mine.split("_", 2)[:2] + [theirs.split("_", 2)[2]])
        token_body, token_signature = stale["token"].split(".")
        mcp_cases = {
            "no credential": ("", ("none", "no credential")),
            "malformed API key": ("cfk_nothex_x", ("api_key", "malformed key")),
            "unknown API key": ("cfk_000000000000_" + "A" * 43, ("api_key", "unknown key")),
            "API key of another agent": (spliced, ("api_key", "wrong secret")),
            "API key after rotation": (mine, ("api_key", "revoked key")),
            "API key of a revoked agent": (revoked_key, ("api_key", "revoked key")),
            "delegation token after rotation": (
                stale["token"],
                ("delegation_token", "token_from_before_rotation"),
            ),
            "revoked delegation token": (
                revoked["token"],
                ("delegation_token", "token_revoked"),
            ),
            "tampered delegation token": (
                f"{token_body}.{token_signature[:-2]}AA",
                ("delegation_token", "token_bad_signature"),
            ),
        }
        for name, (credential, _) in mcp_cases.items():
            assert mcp_status(stack, credential) == 401, name

        # Agent credentials on the admin and approval APIs.
        for path in ("/agents", "/audit", "/approvals", "/approvers", "/policy"):
            for credential in (theirs, revoked["token"]):
                status, _ = stack.admin("GET", path, token=credential)
                assert status == 401, path

        audit = stack.admin("GET", "/audit?limit=10000")[1]["records"]
        failures = {
            (r["details"]["method"], r["details"]["reason"])
            for r in audit
            if r["event"] == "auth.failed"
        }
        for name, (_, expected) in mcp_cases.items():
            assert expected in failures, (name, failures)
        assert ("admin_token", "wrong token") in failures, failures
        text = json.dumps(audit)
        for secret in (mine, theirs, spliced, revoked_key, stale["token"], revoked["token"]):
            assert secret not in text
    finally:
        stack.stop()
