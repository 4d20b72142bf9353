"""Human approvals through real MCP clients and the operator commands: a 2-of-3 quorum above
the signer's floor released without the agent calling again, a duplicate or forged decision not
counted, rejection and timeout releasing the budget, defer_until_approval, scheduled payments,
the admin API closed to agents' keys, and the signed approval webhook.

One stack serves the module; each scenario pays as its own agent so budgets do not mix. The
concurrency test (many clients racing on one daily cap) is in test_approvals_concurrency.py."""

import asyncio
import datetime
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from client import balances, call, error, fresh_recipient, http_client, ok, wait_state
from test_lifecycle import restarted_with

POLICY = """
[groups]
finance = ["alice", "bob", "carol"]
ops = ["dave"]

[defaults]
per_transaction = { SOL = "10", USDC = "2000", BONK = "10000000" }
daily = { SOL = "50", USDC = "10000", BONK = "100000000" }
approval = { group = "ops", approvals = 1, timeout = "1h" }

[[defaults.tiers]]
name = "small"
up_to = { USDC = "100", SOL = "10", BONK = "10000000" }
action = "allow"

[[defaults.tiers]]
name = "large"
action = "approve"
group = "finance"
approvals = 2
timeout = "1h"

[agents.rejected]
daily = { USDC = "2500" }

[agents.slow]
daily = { USDC = "2500" }
tiers = [
  { name = "small", up_to = { USDC = "100" }, action = "allow" },
  { name = "large", action = "approve", group = "finance", approvals = 2, timeout = "5s" },
]
"""
APPROVERS = ["alice", "bob", "carol", "dave"]


class Hook:
    """A webhook receiver on a free port: records every delivery."""

    def __init__(self):
        self.deliveries: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                hook.deliveries.append(
                    {
                        "received_ms": int(time.time() * 1000),
                        "signature": self.headers.get("X-ClawFirst-Signature"),
                        "body": body,
                        "event": json.loads(body),
                    }
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def event(self, session_id: str, kind: str, timeout: float = 15) -> dict:
        """The first delivery of `kind` about the session, waited for."""
        deadline = time.monotonic() + timeout
        while True:
            for d in list(self.deliveries):
                if d["event"].get("session_id") == session_id and d["event"]["event"] == kind:
                    return d
            assert time.monotonic() < deadline, f"no {kind} for {session_id}: {self.deliveries}"
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("approvals")
    secret = secrets.token_hex(32)  # 64 bytes of text
    secret_file = base / "webhook.secret"
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    hook = Hook()
    commented = '# webhook_url = "https://hooks.example.com/clawfirst"\n'
    commented += '# webhook_secret_file = "webhook.secret"\n'
    configured = f'webhook_url = "{hook.url}"\nwebhook_secret_file = "{secret_file}"\n'
    stack = restarted_with(base / "data", (commented, configured), policy=POLICY)
    keys = {"demo": stack.api_key}
    for agent in ("rejected", "slow"):
        keys[agent] = stack.clawfirst_json("agents", "add", agent)["api_key"]
    for name in APPROVERS:
        stack.clawfirst("approvers", "add", name)
    yield stack, keys, hook, secret.encode()
    stack.stop()
    hook.server.shutdown()


def run(coro):
    return asyncio.run(coro)


def check_signature(delivery: dict, secret: bytes) -> None:
    """`X-ClawFirst-Signature: t=<ms>,v1=<hex HMAC-SHA256(secret, "<ms>.<body>")>`, recent."""
    header = delivery["signature"]
    assert header, delivery
    parts = dict(p.split("=", 1) for p in header.split(","))
    assert set(parts) == {"t", "v1"}, header
    expected = hmac.new(secret, f"{parts['t']}.{delivery['body']}".encode(), hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest()), header
    assert abs(int(parts["t"]) - delivery["received_ms"]) < 60_000, header


async def request_approval(c, amount: str, recipient: str, **extra) -> tuple[str, dict]:
    """Initializes and authorizes a payment that must wait for approvers."""
    args = {"amount": amount, "recipient": recipient, **extra}
    sid = (await ok(c, "x402.initialize_payment", args))["session_id"]
    auth = await ok(c, "x402.authorize_transaction", {"session_id": sid})
    assert auth["state"] == "awaiting_approval", auth
    assert auth["waiting_for"] == "human_approval" and auth["signature"] is None, auth
    return sid, auth


async def denied(c, amount: str, recipient: str) -> dict:
    sid = (await ok(c, "x402.initialize_payment", {"amount": amount, "recipient": recipient}))[
        "session_id"
    ]
    return await error(c, "x402.authorize_transaction", {"session_id": sid})


def refused(stack, *args: str) -> str:
    """An operator command the server refuses: non-zero exit, its stderr."""
    done = stack.clawfirst(*args, check=False)
    assert done.returncode != 0, done.stdout
    return done.stderr


def approvals_of(stack, sid: str) -> dict:
    status, view = stack.admin("GET", f"/approvals/{sid}")
    assert status == 200, view
    return view["approval"]


def test_a_quorum_of_two_releases_a_payment_above_the_signers_floor(env):
    stack, keys, hook, secret = env
    to = fresh_recipient()

    async def go():
        async with http_client(stack.url, keys["demo"]) as c:
            fee = int(
                (await ok(c, "x402.estimate_fees", {"amount": "1500 USDC", "recipient": to}))[
                    "total_lamports"
                ]
            )
            before = balances(await ok(c, "x402.query_balance", {}))
            sid, auth = await request_approval(c, "1500 USDC", to)
            approval = auth["approval"]
            assert (approval["required"], approval["approvals"]) == (2, 0), approval
            assert approval["tier"] == "large" and approval["group"] == "finance", approval
            assert sorted(approval["eligible"]) == ["alice", "bob", "carol"], approval
            listed = stack.clawfirst_json("approvals", "list")["approvals"]
            assert sid in [p["session_id"] for p in listed]
            check_signature(await hook.event(sid, "approval.pending"), secret)

            # One approval is not enough.
            first = stack.clawfirst_json("approvals", "approve", sid, "--as", "alice")
            assert first["state"] == "awaiting_approval" and first["approval"]["approvals"] == 1
            seen = await ok(c, "x402.verify_settlement", {"session_id": sid})
            assert seen["state"] == "awaiting_approval", seen
            # The same approver again, and bob's signature passed off as carol's, do not count.
            assert "409" in refused(stack, "approvals", "approve", sid, "--as", "alice")
            bob_key = str(stack.data_dir / "approvers" / "bob.key")
            forged = refused(
                stack, "approvals", "approve", sid, "--as", "carol", "--key-file", bob_key
            )
            assert "403" in forged and "registered key" in forged, forged
            assert approvals_of(stack, sid)["approvals"] == 1
            assert (await ok(c, "x402.verify_settlement", {"session_id": sid}))[
                "state"
            ] == "awaiting_approval"

            # The second approver releases it; the agent only watches.
            second = stack.clawfirst_json("approvals", "approve", sid, "--as", "bob")
            assert second["approval"]["approvals"] == 2
            final = await wait_state(c, sid, {"finalized", "failed"}, timeout=60)
            assert final["state"] == "finalized" and final["signature"], final
            after = balances(await ok(c, "x402.query_balance", {}))
            assert before["USDC"] - after["USDC"] == 1_500_000_000
            assert before["SOL"] - after["SOL"] == fee
            for approver in ("alice", "bob"):
                delivery = next(
                    d
                    for d in hook.deliveries
                    if d["event"].get("session_id") == sid
                    and d["event"]["event"] == "approval.approved"
                    and d["event"]["approver"] == approver
                )
                check_signature(delivery, secret)
            listed = stack.clawfirst_json("approvals", "list")["approvals"]
            assert sid not in [p["session_id"] for p in listed]

    run(go())


def test_a_rejection_ends_the_payment_and_releases_its_budget(env):
    """Agent `rejected` has a daily cap of 2500 USDC: one 1500 USDC payment at a time."""
    stack, keys, hook, secret = env

    async def go():
        async with http_client(stack.url, keys["rejected"]) as c:
            sid, _ = await request_approval(c, "1500 USDC", fresh_recipient())
            held = await denied(c, "1500 USDC", fresh_recipient())
            assert held["details"]["rule"] == "daily_cap", held  # the waiting payment holds it

            reason = "not in this quarter's budget"
            decided = stack.clawfirst_json(
                "approvals", "reject", sid, "--as", "carol", "--reason", reason
            )
            assert decided["state"] == "rejected", decided
            seen = await ok(c, "x402.verify_settlement", {"session_id": sid})
            assert seen["state"] == "rejected" and seen["signature"] is None, seen
            assert seen["failure"]["code"] == "APPROVAL_REJECTED", seen
            err = await error(c, "x402.authorize_transaction", {"session_id": sid})
            assert err["code"] == "POLICY_VIOLATION", err
            assert err["details"]["state"] == "rejected", err
            assert reason in (err["details"].get("reason") or ""), err
            assert "409" in refused(stack, "approvals", "approve", sid, "--as", "alice")

            delivery = await hook.event(sid, "approval.rejected")
            check_signature(delivery, secret)
            assert delivery["event"]["approver"] == "carol"
            # The reservation is gone: the same payment fits again.
            await request_approval(c, "1500 USDC", fresh_recipient())

    run(go())


def test_without_a_quorum_in_time_the_payment_expires(env):
    """Agent `slow`'s approvals time out after 5 s; its daily cap fits one 1500 USDC payment."""
    stack, keys, hook, secret = env

    async def go():
        async with http_client(stack.url, keys["slow"]) as c:
            sid, _ = await request_approval(c, "1500 USDC", fresh_recipient())
            stack.clawfirst_json("approvals", "approve", sid, "--as", "alice")
            held = await denied(c, "1500 USDC", fresh_recipient())
            assert held["details"]["rule"] == "daily_cap", held

            seen = await wait_state(c, sid, {"expired", "finalized", "failed"}, timeout=20)
            assert seen["state"] == "expired", seen
            assert seen["failure"]["code"] == "APPROVAL_TIMEOUT", seen
            err = await error(c, "x402.authorize_transaction", {"session_id": sid})
            assert err["code"] == "APPROVAL_TIMEOUT", err
            assert "409" in refused(stack, "approvals", "approve", sid, "--as", "bob")
            check_signature(await hook.event(sid, "approval.expired"), secret)
            await request_approval(c, "1500 USDC", fresh_recipient())

    run(go())


def test_defer_until_approval_waits_for_the_approval_tables_group(env):
    stack, keys, _, _ = env

    async def go():
        async with http_client(stack.url, keys["demo"]) as c:
            sid, auth = await request_approval(
                c, "1 USDC", fresh_recipient(), settlement_constraint="defer_until_approval"
            )
            approval = auth["approval"]
            assert approval["rule"] == "approval_requested" and approval["group"] == "ops"
            assert approval["required"] == 1 and approval["eligible"] == ["dave"], approval
            # Finance approvers are not in the ops group.
            assert "403" in refused(stack, "approvals", "approve", sid, "--as", "alice")
            assert approvals_of(stack, sid)["approvals"] == 0
            stack.clawfirst_json("approvals", "approve", sid, "--as", "dave")
        # Released without the agent: watched on the admin API.
        deadline = time.monotonic() + 30
        while stack.admin("GET", f"/sessions/{sid}")[1]["session"]["state"] != "finalized":
            assert time.monotonic() < deadline, stack.admin("GET", f"/sessions/{sid}")
            await asyncio.sleep(0.3)

    run(go())


def test_a_scheduled_payment_runs_at_its_time_without_another_call(env):
    stack, keys, _, _ = env
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    at_text = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    async def go():
        async with http_client(stack.url, keys["demo"]) as c:
            args = {
                "amount": "2 USDC",
                "recipient": fresh_recipient(),
                "settlement_constraint": "scheduled",
                "execute_after": at_text,
            }
            sid = (await ok(c, "x402.initialize_payment", args))["session_id"]
            auth = await ok(c, "x402.authorize_transaction", {"session_id": sid})
            assert auth["state"] == "approved" and auth["waiting_for"] == "execute_after", auth
            assert auth["signature"] is None
        # Watched on the admin API only: nothing the agent does moves it.
        deadline = time.monotonic() + 40
        while True:
            session = stack.admin("GET", f"/sessions/{sid}")[1]["session"]
            now = datetime.datetime.now(datetime.timezone.utc)
            if session["state"] != "approved":
                assert now >= at - datetime.timedelta(milliseconds=50), (now, session)
            if session["state"] == "finalized":
                break
            assert session["state"] in ("approved", "signed", "submitted", "confirmed"), session
            assert time.monotonic() < deadline, session
            await asyncio.sleep(0.1)
        async with http_client(stack.url, keys["demo"]) as c:
            seen = await ok(c, "x402.verify_settlement", {"session_id": sid})
            assert seen["state"] == "finalized" and seen["settled"] is True, seen

    run(go())


def test_an_agents_key_cannot_list_or_decide_approvals(env):
    stack, keys, _, _ = env

    async def go():
        async with http_client(stack.url, keys["demo"]) as c:
            sid, _ = await request_approval(
                c, "1 USDC", fresh_recipient(), settlement_constraint="defer_until_approval"
            )
        for token in (keys["demo"], keys["rejected"], ""):
            status, _ = stack.admin("GET", "/approvals", token=token)
            assert status == 401
            status, _ = stack.admin("GET", f"/approvals/{sid}", token=token)
            assert status == 401
            body = {"approver": "dave", "statement": "x", "signature": "y"}
            status, _ = stack.admin("POST", f"/approvals/{sid}/decisions", body, token=token)
            assert status == 401
        assert approvals_of(stack, sid)["approvals"] == 0

    run(go())


def test_every_webhook_delivery_is_signed_and_carries_no_secret(env):
    stack, keys, hook, secret = env

    async def go():
        async with http_client(stack.url, keys["demo"]) as c:
            sid, _ = await request_approval(
                c, "3 USDC", fresh_recipient(), settlement_constraint="defer_until_approval"
            )
        pending = (await hook.event(sid, "approval.pending"))["event"]
        assert pending["amount"] == "3" and pending["asset"] == "USDC", pending
        assert pending["agent_id"] == stack.info["agent_id"], pending
        assert pending["approval"]["required"] == 1 and pending["approval"]["group"] == "ops"
        stack.clawfirst("approvals", "reject", sid, "--as", "dave", "--reason", "no")
        await hook.event(sid, "approval.rejected")

    run(go())
    credentials = [stack.api_key, (stack.data_dir / "admin.token").read_text().strip()]
    for delivery in hook.deliveries:
        check_signature(delivery, secret)
        assert delivery["event"]["event"].startswith("approval."), delivery
        for s in (*credentials, stack.api_key.split("_", 2)[2], secret.decode()):
            assert s not in delivery["body"]


def signed_header(key_file, name: str, method: str, target: str, at_ms: int | None = None) -> str:
    """An approver's request signature, made here with the `cryptography` package from the
    seed in the approver's key file: what `clawfirst approvals --server` sends."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    import base64

    seed = base64.b64decode(open(key_file).read().splitlines()[1])
    at_ms = at_ms if at_ms is not None else int(time.time() * 1000)
    message = b"clawfirst approver request v1\n" + f"{method}\n{target}\n{at_ms}".encode()
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(message)
    return f"ClawFirst-Approver name={name},at={at_ms},sig={base64.b64encode(signature).decode()}"


def raw_admin(stack, method: str, path: str, authorization: str, body: dict | None = None) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{stack.admin_url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": authorization, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_an_approver_signs_in_with_their_own_key_and_reaches_only_the_approvals(env, tmp_path):
    """Dave approves from "his own machine": no data directory, no admin token, only his key
    file and the server's URL."""
    from conftest import run_clawfirst

    stack, keys, _, _ = env
    own_key = tmp_path / "dave.key"
    own_key.write_bytes((stack.data_dir / "approvers" / "dave.key").read_bytes())
    os.chmod(own_key, 0o600)
    as_dave = ("--server", stack.admin_url, "--as", "dave", "--key-file", str(own_key))

    async def go():
        async with http_client(stack.url, keys["demo"]) as c:
            sid, _ = await request_approval(
                c, "1 USDC", fresh_recipient(), settlement_constraint="defer_until_approval"
            )
        listed = run_clawfirst("approvals", "list", *as_dave, "--json")
        assert listed.returncode == 0, listed.stderr
        assert sid in [p["session_id"] for p in json.loads(listed.stdout)["approvals"]]

        # Signed in as dave, a decision in alice's name is refused (alice's key signs it).
        alice_key = str(stack.data_dir / "approvers" / "alice.key")
        login = signed_header(own_key, "dave", "POST", f"/admin/v1/approvals/{sid}/decisions")
        body = {"approver": "alice", "statement": "x", "signature": "y"}
        assert raw_admin(stack, "POST", f"/approvals/{sid}/decisions", login, body) == 403

        approved = run_clawfirst("approvals", "approve", sid, *as_dave, "--json")
        assert approved.returncode == 0, approved.stderr
        assert json.loads(approved.stdout)["approval"]["approvals"] == 1

        # The approver's login reaches nothing else of the admin API.
        for path in ("/approvers", "/agents", "/audit", "/policy"):
            header = signed_header(own_key, "dave", "GET", f"/admin/v1{path}")
            assert raw_admin(stack, "GET", path, header) == 401, path
        # Signatures for another path, by another key, stale, or by an unknown approver fail.
        refused_headers = [
            signed_header(own_key, "dave", "GET", "/admin/v1/approvals?limit=1"),
            signed_header(alice_key, "dave", "GET", "/admin/v1/approvals"),
            signed_header(own_key, "dave", "GET", "/admin/v1/approvals", at_ms=1),
            signed_header(own_key, "mallory", "GET", "/admin/v1/approvals"),
            "ClawFirst-Approver name=dave",
        ]
        for header in refused_headers:
            assert raw_admin(stack, "GET", "/approvals", header) == 401, header
        ok_header = signed_header(own_key, "dave", "GET", "/admin/v1/approvals")
        assert raw_admin(stack, "GET", "/approvals", ok_header) == 200

        status, audit = stack.admin("GET", "/audit?limit=10000")
        assert status == 200
        reasons = {
            r["details"]["reason"]
            for r in audit["records"]
            if r["event"] == "auth.failed" and r["details"]["method"] == "approver_signature"
        }
        assert {
            "approver_bad_signature",
            "approver_request_stale",
            "unknown_approver",
            "malformed_approver_authorization",
        } <= reasons, reasons
        assert ok_header.rsplit("sig=", 1)[1] not in json.dumps(audit)

    run(go())
