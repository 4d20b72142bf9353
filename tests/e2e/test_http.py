"""The payment path over streamable HTTP with the official MCP Python SDK."""

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from client import KNOWN_ADDRESS, balances, error, http_client, ok, pay

TOOLS = {
    "x402.initialize_payment",
    "x402.authorize_transaction",
    "x402.verify_settlement",
    "x402.query_balance",
    "x402.estimate_fees",
    "x402.cancel_payment",
}


def run(coro):
    return asyncio.run(coro)


def fresh_recipient() -> str:
    import secrets
    import base58_local

    return base58_local.encode(secrets.token_bytes(32))


def test_tools_list_has_the_six_tools_with_the_specified_schema(stack):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == TOOLS
            schema = tools["x402.initialize_payment"].input_schema
            assert schema["required"] == ["amount", "recipient"]
            assert schema["properties"]["amount"]["pattern"] == r"^\d+(\.\d+)?\s+(SOL|USDC|BONK)$"
            assert schema["properties"]["purpose"]["maxLength"] == 500
            assert schema["properties"]["idempotency_key"]["maxLength"] == 256
            assert schema["properties"]["settlement_constraint"]["enum"] == [
                "immediate",
                "defer_until_approval",
                "scheduled",
            ]
            assert schema["properties"]["metadata"]["type"] == "object"
            for t in tools.values():
                assert t.output_schema is not None, t.name

    run(go())


@pytest.mark.parametrize(
    "amount,asset,units",
    [
        ("2.5 USDC", "USDC", 2_500_000),
        ("0.25 SOL", "SOL", 250_000_000),
        ("12345.5 BONK", "BONK", 1_234_550_000),
    ],
)
def test_a_payment_settles_and_moves_exactly_the_amount_plus_fees(stack, amount, asset, units):
    async def go():
        recipient = fresh_recipient()
        async with http_client(stack.url, stack.api_key) as c:
            before = balances(await ok(c, "x402.query_balance", {}))
            estimate = await ok(c, "x402.estimate_fees", {"amount": amount, "recipient": recipient})
            result = await pay(c, amount, recipient)
            assert result["init"]["base_units"] == str(units)
            after = balances(await ok(c, "x402.query_balance", {}))
            fee = int(estimate["total_lamports"])
            if asset == "SOL":
                assert before["SOL"] - after["SOL"] == units + fee
            else:
                assert before[asset] - after[asset] == units
                assert before["SOL"] - after["SOL"] == fee
                assert estimate["creates_recipient_account"] is True
                assert int(estimate["rent_lamports"]) > 0

    run(go())


def test_an_email_recipient_from_the_directory_is_paid(stack):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            result = await pay(c, "1 USDC", "merchant@example.com")
            assert result["init"]["recipient"] == "merchant@example.com"
            assert len(result["init"]["recipient_address"]) >= 32
            err = await error(
                c,
                "x402.initialize_payment",
                {"amount": "1 USDC", "recipient": "nobody@example.com"},
            )
            assert err["code"] == "INVALID_INPUT"
            assert err["details"]["field"] == "recipient"

    run(go())


def test_an_amount_over_the_cap_is_a_policy_violation(stack):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            init = await ok(
                c, "x402.initialize_payment", {"amount": "2000 USDC", "recipient": KNOWN_ADDRESS}
            )
            err = await error(c, "x402.authorize_transaction", {"session_id": init["session_id"]})
            assert err["code"] == "POLICY_VIOLATION"
            assert err["details"]["rule"] == "per_transaction_cap"
            again = await ok(c, "x402.verify_settlement", {"session_id": init["session_id"]})
            assert again["state"] == "rejected"

    run(go())


@pytest.mark.parametrize(
    "args,field",
    [
        ({"amount": "1e3 USDC", "recipient": KNOWN_ADDRESS}, "amount"),
        ({"amount": "-1 SOL", "recipient": KNOWN_ADDRESS}, "amount"),
        ({"amount": "0.0000001 USDC", "recipient": KNOWN_ADDRESS}, "amount"),
        ({"amount": "5 DOGE", "recipient": KNOWN_ADDRESS}, "amount"),
        ({"amount": "1 USDC", "recipient": "0OIl-not-base58-at-all-but-long-enough"}, "recipient"),
        ({"amount": "1 USDC", "recipient": KNOWN_ADDRESS, "purpose": "p" * 501}, "purpose"),
    ],
)
def test_malformed_input_is_invalid_input_naming_the_field(stack, args, field):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            err = await error(c, "x402.initialize_payment", args)
            assert err["code"] == "INVALID_INPUT", err
            assert err["details"]["field"] == field, err
            assert field in err["message"]

    run(go())


def test_idempotent_retries_return_the_same_session(stack):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            args = {"amount": "3 USDC", "recipient": KNOWN_ADDRESS, "idempotency_key": "order-42"}
            first = await ok(c, "x402.initialize_payment", args)
            second = await ok(c, "x402.initialize_payment", args)
            assert first["session_id"] == second["session_id"]
            err = await error(c, "x402.initialize_payment", {**args, "amount": "4 USDC"})
            assert err["code"] == "INVALID_INPUT"
            assert err["details"]["field"] == "idempotency_key"

    run(go())


def test_cancel_releases_the_session(stack):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            init = await ok(
                c, "x402.initialize_payment", {"amount": "1 SOL", "recipient": KNOWN_ADDRESS}
            )
            cancelled = await ok(c, "x402.cancel_payment", {"session_id": init["session_id"]})
            assert cancelled["state"] == "cancelled"
            err = await error(c, "x402.authorize_transaction", {"session_id": init["session_id"]})
            assert err["code"] == "INVALID_STATE"
            missing = await error(c, "x402.verify_settlement", {"session_id": "ps_doesnotexist"})
            assert missing["code"] == "SESSION_NOT_FOUND"

    run(go())


def test_requests_without_a_valid_api_key_are_refused(stack):
    for headers in ({}, {"Authorization": "Bearer cfk_000000000000_" + "A" * 43}):
        request = urllib.request.Request(
            stack.url,
            data=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                **headers,
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401


def test_a_sol_payment_below_rent_to_a_new_account_is_refused_before_signing(stack):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            err = await error(
                c,
                "x402.initialize_payment",
                {"amount": "0.0001 SOL", "recipient": fresh_recipient()},
            )
            assert err["code"] == "INVALID_INPUT"
            assert err["details"]["field"] == "amount"
            assert "rent-exempt" in err["message"]

    run(go())


def admin_get(stack, path: str) -> dict:
    import json as _json

    request = urllib.request.Request(
        stack.info["admin_url"] + path,
        headers={"Authorization": f"Bearer {stack.info['admin_token']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        return _json.loads(r.read())


def test_every_step_of_a_payment_is_audited_without_secrets(stack):
    async def go():
        async with http_client(stack.url, stack.api_key) as c:
            return await pay(c, "1 BONK", KNOWN_ADDRESS, purpose="audit check")

    result = run(go())
    session_id = result["init"]["session_id"]
    detail = admin_get(stack, f"/sessions/{session_id}")
    events = [r["event"] for r in detail["audit"]]
    for expected in (
        "session.created",
        "grant.issued",
        "signer.signed",
        "ledger.submitted",
        "ledger.finalized",
    ):
        assert expected in events, events
    assert detail["session"]["grant_id"]
    # `up`'s policy has caps and no tiers: the rule that allowed the payment is `caps`.
    assert detail["session"]["policy_rule"] == "caps"
    grant = next(r for r in detail["audit"] if r["event"] == "grant.issued")
    assert grant["details"]["policy_version"]
    everything = admin_get(stack, "/audit?limit=10000")
    tool_calls = [r for r in everything["records"] if r["event"].startswith("tool.")]
    assert {"tool.initialize_payment", "tool.authorize_transaction", "tool.verify_settlement"} <= {
        r["event"] for r in tool_calls
    }
    dump = json.dumps(everything)
    secret_part = stack.api_key.split("_", 2)[2]
    assert secret_part not in dump and stack.info["admin_token"] not in dump
    # The admin API refuses an agent's credential.
    request = urllib.request.Request(
        stack.info["admin_url"] + "/audit", headers={"Authorization": f"Bearer {stack.api_key}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401


def test_an_operator_adds_an_agent_whose_key_works_and_whose_sessions_are_its_own(stack):
    import subprocess

    from conftest import binary

    added = subprocess.run(
        [
            binary("clawfirst"),
            "agents",
            "add",
            "e2e-second",
            "--json",
            "--data-dir",
            str(stack.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert added.returncode == 0, added.stderr
    second_key = json.loads(added.stdout)["api_key"]
    again = subprocess.run(
        [binary("clawfirst"), "agents", "add", "e2e-second", "--data-dir", str(stack.data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 1 and "already exists" in again.stderr

    async def go():
        async with http_client(stack.url, stack.api_key) as first:
            mine = await ok(
                first, "x402.initialize_payment", {"amount": "1 USDC", "recipient": KNOWN_ADDRESS}
            )
        async with http_client(stack.url, second_key) as second:
            assert (await ok(second, "x402.query_balance", {}))["balances"]
            # Another agent's session does not exist for it.
            err = await error(
                second, "x402.authorize_transaction", {"session_id": mine["session_id"]}
            )
            assert err["code"] == "SESSION_NOT_FOUND"

    run(go())
