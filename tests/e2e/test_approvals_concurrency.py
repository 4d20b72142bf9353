"""Many MCP clients of one agent racing on one daily cap: the reservation is atomic, so exactly
as many payments as fit are approved, the rest are denied by `daily_cap`, and the non-rejected
sessions never add up to more than the cap. Each round uses a fresh agent (a fresh window)."""

import asyncio

import pytest

from client import call, fresh_recipient, http_client, ok
from test_lifecycle import restarted_with

CLIENTS = 64
CAP_USDC = 10
ROUNDS = [("conc-1", 1), ("conc-2", 1), ("conc-3", 3)]  # (agent, USDC per payment)

POLICY = """
[defaults]
per_transaction = { SOL = "10", USDC = "1000", BONK = "10000000" }
daily = { SOL = "50", USDC = "5000", BONK = "100000000" }
""" + "".join(
    f'\n[agents.{agent}]\nper_transaction = {{ USDC = "{CAP_USDC}" }}\n'
    f'daily = {{ USDC = "{CAP_USDC}" }}\n'
    for agent, _ in ROUNDS
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = restarted_with(tmp_path_factory.mktemp("concurrency") / "data", policy=POLICY)
    yield s
    s.stop()


async def one_payment(url: str, api_key: str, amount: str, ready: list, start) -> dict:
    """One client: connects, waits for the others, then initializes and authorizes."""
    async with http_client(url, api_key) as c:
        ready.append(1)
        await start.wait()
        init = await ok(
            c, "x402.initialize_payment", {"amount": amount, "recipient": fresh_recipient()}
        )
        return await call(c, "x402.authorize_transaction", {"session_id": init["session_id"]})


@pytest.mark.parametrize("agent,usdc", ROUNDS)
def test_parallel_payments_never_exceed_the_daily_cap(stack, agent, usdc):
    api_key = stack.clawfirst_json("agents", "add", agent)["api_key"]

    async def go():
        start, ready = asyncio.Event(), []
        tasks = [
            asyncio.create_task(one_payment(stack.url, api_key, f"{usdc} USDC", ready, start))
            for _ in range(CLIENTS)
        ]
        # Every client finishes its MCP handshake first, so the payments race.
        deadline = asyncio.get_event_loop().time() + 30
        while len(ready) < CLIENTS:
            assert asyncio.get_event_loop().time() < deadline, f"{len(ready)} clients connected"
            await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)

    results = asyncio.run(go())
    allowed = [r for r in results if r["success"]]
    denied = [r for r in results if not r["success"]]
    for r in allowed:
        assert r["result"]["state"] in ("submitted", "confirmed", "finalized"), r
    for r in denied:
        assert r["error"]["code"] == "POLICY_VIOLATION", r
        assert r["error"]["details"]["rule"] == "daily_cap", r
    assert len(allowed) == min(CLIENTS, CAP_USDC // usdc)

    status, listed = stack.admin("GET", f"/sessions?agent={agent}&limit=1000")
    assert status == 200, listed
    sessions = listed["sessions"]
    assert len(sessions) == CLIENTS
    kept = [s for s in sessions if s["state"] != "rejected"]
    assert len(kept) == len(allowed)
    assert sum(int(s["base_units"]) for s in kept) <= CAP_USDC * 1_000_000
    assert all(s["policy_rule"] == "daily_cap" for s in sessions if s["state"] == "rejected")
