"""Agent credentials through a real MCP client: rotation replaces every API key at once,
revocation shuts the agent out (also on a second server sharing the database), and each refusal
is a plain 401 that the audit trail records with the method and reason, never the credential."""

import asyncio
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request

from client import KNOWN_ADDRESS, error, http_client, ok
from conftest import Stack, binary, free_port, wait_healthy


def status_at(url: str, credential: str) -> int:
    """The HTTP status of an MCP tools/list request to `url` with `credential`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        headers={
            "Authorization": f"Bearer {credential}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def mcp_status(stack: Stack, key: str) -> int:
    """The HTTP status of an MCP tools/list request to `stack` made with `key`."""
    return status_at(stack.url, key)


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
                # Its first character changed: the signature's R part, never a no-op.
                f"{token_body}.{'B' if token_signature[0] == 'A' else 'A'}{token_signature[1:]}",
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


class Replica:
    """A second server (`clawfirst serve`) on the same data directory's database, signer and
    ledger, listening on its own port: what another replica behind a load balancer would be."""

    def __init__(self, stack: Stack):
        self.port = free_port()
        config = (stack.data_dir / "clawfirst.toml").read_text()
        listen = f'listen = "127.0.0.1:{stack.port}"'
        assert listen in config
        self.config = stack.data_dir / "replica.toml"
        self.config.write_text(config.replace(listen, f'listen = "127.0.0.1:{self.port}"'))
        self.log = open(stack.data_dir.parent / "replica.log", "ab")
        self.proc = subprocess.Popen(
            [binary("clawfirst"), "serve", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=dict(os.environ, CLAWFIRST_LOG="warn"),
        )
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        wait_healthy(self.port, self.proc, "the replica (clawfirst serve)")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def test_revocation_and_rotation_hold_at_once_on_another_replica(tmp_path):
    """Two servers share the database. Each answers credentials from its cache while nothing
    changes; a rotation or revocation made through the first is refused by the second on the
    very next request, without waiting."""
    stack = Stack(tmp_path / "data").start()
    replica = None
    try:
        key = stack.clawfirst_json("agents", "add", "replicated")["api_key"]
        token = stack.clawfirst_json("agents", "token", "replicated", "--ttl", "10m")
        replica = Replica(stack)
        # Warm both servers' caches.
        for _ in range(20):
            for url in (stack.url, replica.url):
                assert status_at(url, key) == 200
                assert status_at(url, token["token"]) == 200

        stack.clawfirst_json("agents", "revoke-token", "replicated", token["token_id"])
        assert status_at(replica.url, token["token"]) == 401

        rotated = stack.clawfirst_json("agents", "rotate", "replicated")
        assert status_at(replica.url, key) == 401
        for _ in range(20):
            assert status_at(replica.url, rotated["api_key"]) == 200

        stack.clawfirst_json("agents", "revoke", "replicated")
        assert status_at(replica.url, rotated["api_key"]) == 401
        # The other agent is untouched, on both.
        for url in (stack.url, replica.url):
            assert status_at(url, stack.api_key) == 200
    finally:
        if replica is not None:
            replica.stop()
        stack.stop()
