"""Every kind of policy rule, through a real MCP client: for each rule a payment it allows and
one it denies (the denial naming the rule, the session `rejected`), `clawfirst policy explain`
run before each payment agreeing with what then happened, canary payees suspending the agent,
`clawfirst policy check`, and reloads (refused and applied) in the audit trail.

One stack serves the module; each rule is exercised by its own agent (created with `clawfirst
agents add` and given a per-agent override), so the tests do not share budgets."""

import asyncio
import datetime
import json
import os
from pathlib import Path

import pytest

from client import KNOWN_ADDRESS, call, error, fresh_recipient, http_client, ok, wait_state
from conftest import run_clawfirst
from test_lifecycle import restarted_with

BLOCKED = fresh_recipient()
BLOCKED_PAYEE = fresh_recipient()  # the address behind blocked@example.com
CANARY = fresh_recipient()  # an operator-wide canary
AGENT_CANARY = fresh_recipient()  # a canary of agent canary-b only
DAYS = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'
NOW = datetime.datetime.now(datetime.timezone.utc)  # time windows are placed around it
AGENTS = ["ops", "capped", "counted", "night", "future", "canary-a", "canary-b", "strict"]


def hhmm(t: datetime.datetime) -> str:
    return t.strftime("%H:%M")


def policy_text(extra: str = "", networks: str = '["localnet", "devnet"]') -> str:
    """The module's policy: every rule kind, in defaults or in an agent's override. The default
    time window is the four hours around now (written at UTC+2); agent night's is elsewhere."""
    now = NOW
    local = now + datetime.timedelta(hours=2)
    window_from, window_to = hhmm(local - datetime.timedelta(hours=2)), hhmm(
        local + datetime.timedelta(hours=2)
    )
    night_from = hhmm(now + datetime.timedelta(hours=6))
    night_to = hhmm(now + datetime.timedelta(hours=8))
    return f"""
networks = {networks}
canaries = ["{CANARY}"]

[prices]
SOL = "150"
BONK = "0.00002"

[groups]
finance = ["alice", "bob", "carol"]

[defaults]
assets = ["SOL", "USDC", "BONK"]
per_transaction = {{ SOL = "2", USDC = "300", BONK = "10000000" }}
daily = {{ SOL = "50", USDC = "5000", BONK = "100000000" }}
usd = {{ per_transaction = "250" }}
purpose_required_above = {{ USDC = "20" }}
active_from = "2020-01-01"
active_until = "2099-12-31"
time_windows = [
  {{ days = {DAYS}, from = "{window_from}", to = "{window_to}", utc_offset = "+02:00" }},
]
approval = {{ group = "finance", approvals = 1, timeout = "1h" }}
recipients = {{ block = ["{BLOCKED}", "blocked@example.com"] }}

[[defaults.tiers]]
name = "small"
up_to = {{ USDC = "50", SOL = "2", BONK = "10000000" }}
action = "allow"

[[defaults.tiers]]
name = "review"
up_to = {{ USDC = "200" }}
action = "approve"

[[defaults.tiers]]
name = "large"
action = "deny"

[agents.ops]
assets = ["USDC"]
recipients = {{ allow = ["{KNOWN_ADDRESS}", "merchant@example.com"] }}

[agents.capped]
per_transaction = {{ USDC = "3", SOL = "0.01" }}
hourly = {{ SOL = "0.015" }}
daily = {{ USDC = "5" }}
usd = {{ per_transaction = "5", daily = "10" }}

[agents.counted]
payments = {{ per_hour = 2 }}

[agents.night]
time_windows = [{{ days = {DAYS}, from = "{night_from}", to = "{night_to}" }}]

[agents.future]
active_from = "2099-01-01"

[agents.canary-b]
canaries = ["{AGENT_CANARY}"]

[agents.strict]
recipients = {{ first_time = "approve" }}
{extra}"""


def write_policy(data: Path, text: str) -> None:
    """Replaces policy.toml in one step, so the server's watcher never reads half a file."""
    tmp = data / "policy.toml.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, data / "policy.toml")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    data = tmp_path_factory.mktemp("policy") / "data"
    payees = f'[payees]\n"blocked@example.com" = "{BLOCKED_PAYEE}"\n'
    stack = restarted_with(data, ("[payees]\n", payees), policy=policy_text())
    keys = {stack.info["agent_id"]: stack.api_key, "demo": stack.api_key}
    for agent in AGENTS:
        keys[agent] = stack.clawfirst_json("agents", "add", agent)["api_key"]
    stack.clawfirst("approvers", "add", "alice")
    yield stack, keys
    stack.stop()


def run(coro):
    return asyncio.run(coro)


async def expect(stack, keys, agent, amount, to, decision, rule, purpose=None) -> tuple:
    """Explains a payment (before making it), makes it as `agent`, and checks that the
    explanation and the outcome are both `decision` by `rule`. Returns the session id and the
    authorize envelope."""
    agent_id = stack.info["agent_id"] if agent == "demo" else agent
    args = ["policy", "explain", "--agent", agent_id, "--amount", amount, "--to", to]
    explained = stack.clawfirst_json(*args, *(["--purpose", purpose] if purpose else []))
    assert (explained["decision"], explained["rule"]) == (decision, rule), explained["text"]
    async with http_client(stack.url, keys[agent]) as c:
        extra = {"purpose": purpose} if purpose else {}
        init = await ok(c, "x402.initialize_payment", {"amount": amount, "recipient": to, **extra})
        sid = init["session_id"]
        env = await call(c, "x402.authorize_transaction", {"session_id": sid})
        if decision == "deny":
            assert not env["success"], env
            assert env["error"]["code"] == "POLICY_VIOLATION", env
            assert env["error"]["details"]["rule"] == rule, env
            assert env["error"]["details"]["policy_version"] == explained["policy_version"]
            seen = await ok(c, "x402.verify_settlement", {"session_id": sid})
            assert seen["state"] == "rejected" and seen["signature"] is None, seen
        elif decision == "needs_approval":
            assert env["success"], env
            assert env["result"]["state"] == "awaiting_approval", env
            assert env["result"]["approval"]["rule"] == rule, env
        else:
            assert env["success"], env
            assert env["result"]["state"] in ("submitted", "confirmed", "finalized"), env
            assert env["result"]["policy_rule"] == rule, env
    return sid, env


def test_recipient_and_asset_rules(env):
    stack, keys = env

    async def go():
        # Blocklist: an address, and a directory payee by e-mail; others are paid.
        await expect(stack, keys, "demo", "1 USDC", BLOCKED, "deny", "recipient_blocked")
        await expect(
            stack, keys, "demo", "1 USDC", "blocked@example.com", "deny", "recipient_blocked"
        )
        await expect(stack, keys, "demo", "1 USDC", fresh_recipient(), "allow", "tier")
        # Allowlist (an address and an e-mail) and asset allowlist of agent ops.
        await expect(stack, keys, "ops", "1 USDC", KNOWN_ADDRESS, "allow", "tier")
        await expect(stack, keys, "ops", "1 USDC", "merchant@example.com", "allow", "tier")
        await expect(
            stack, keys, "ops", "1 USDC", fresh_recipient(), "deny", "recipient_not_allowed"
        )
        await expect(stack, keys, "ops", "0.01 SOL", KNOWN_ADDRESS, "deny", "asset_not_allowed")
        await expect(stack, keys, "demo", "0.01 SOL", KNOWN_ADDRESS, "allow", "tier")

    run(go())


def test_a_blocked_payee_cannot_be_paid_by_its_address_either(env):
    """Blocking `blocked@example.com` must also block paying the address it stands for, or
    the blocklist is bypassed by writing the address instead of the e-mail."""
    stack, keys = env
    run(expect(stack, keys, "demo", "1 USDC", BLOCKED_PAYEE, "deny", "recipient_blocked"))


def test_amount_rules_purpose_caps_and_tiers(env):
    stack, keys = env

    async def go():
        to = KNOWN_ADDRESS
        await expect(stack, keys, "demo", "25 USDC", to, "deny", "purpose_required")
        await expect(stack, keys, "demo", "25 USDC", to, "allow", "tier", purpose="invoice 7")
        await expect(stack, keys, "demo", "20 USDC", to, "allow", "tier")
        await expect(
            stack, keys, "demo", "301 USDC", to, "deny", "per_transaction_cap", purpose="big"
        )
        # Tiers: above 50 USDC a finance approval, above 200 USDC denied by a deny tier.
        _, waiting = await expect(
            stack, keys, "demo", "150 USDC", to, "needs_approval", "tier", purpose="review"
        )
        await expect(stack, keys, "demo", "220 USDC", to, "deny", "tier", purpose="too big")
        # USD: 1.7 SOL at 150 USD is 255 USD, over the 250 USD per-transaction cap.
        await expect(stack, keys, "demo", "1.7 SOL", to, "deny", "usd_per_transaction_cap")
        await expect(stack, keys, "demo", "1.6 SOL", to, "allow", "tier")
        approval = waiting["result"]["approval"]
        assert approval["tier"] == "review" and approval["required"] == 1, approval
        assert approval["group"] == "finance" and approval["approvals"] == 0, approval

    run(go())


def test_rolling_caps_in_units_usd_and_payment_counts(env):
    stack, keys = env

    async def go():
        to = KNOWN_ADDRESS
        await expect(stack, keys, "capped", "4 USDC", to, "deny", "per_transaction_cap")
        await expect(stack, keys, "capped", "3 USDC", to, "allow", "tier")
        await expect(stack, keys, "capped", "3 USDC", to, "deny", "daily_cap")
        await expect(stack, keys, "capped", "2 USDC", to, "allow", "tier")  # exactly the cap
        await expect(stack, keys, "capped", "0.01 SOL", to, "allow", "tier")
        await expect(stack, keys, "capped", "0.01 SOL", to, "deny", "hourly_cap")
        # USD so far: 3 + 2 + 1.5 = 6.5 of 10; 100000 BONK is 2 USD.
        await expect(stack, keys, "capped", "100000 BONK", to, "allow", "tier")
        await expect(stack, keys, "capped", "100000 BONK", to, "deny", "usd_daily_cap")
        await expect(stack, keys, "capped", "75000 BONK", to, "allow", "tier")  # 10 USD in all
        for _ in range(2):
            await expect(stack, keys, "counted", "0.5 USDC", to, "allow", "tier")
        await expect(stack, keys, "counted", "0.5 USDC", to, "deny", "payments_per_hour")

    run(go())


def test_active_dates_and_time_windows(env):
    stack, keys = env

    async def go():
        to = KNOWN_ADDRESS
        await expect(stack, keys, "future", "1 USDC", to, "deny", "outside_active_dates")
        await expect(stack, keys, "night", "1 USDC", to, "deny", "outside_time_window")
        await expect(stack, keys, "demo", "1 USDC", to, "allow", "tier")
        # The default window is not a catch-all: twelve hours from now it denies.
        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=12)
        agent = stack.info["agent_id"]
        explained = stack.clawfirst_json(
            "policy", "explain", "--agent", agent, "--amount", "1 USDC", "--to", to,
            "--at", later.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )  # fmt: skip
        assert (explained["decision"], explained["rule"]) == ("deny", "outside_time_window")
        explained = stack.clawfirst_json(
            "policy", "explain", "--agent", "night", "--amount", "1 USDC", "--to", to,
            "--at", (later - datetime.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )  # fmt: skip
        assert explained["decision"] == "allow", explained["text"]

    run(go())


def test_canary_payees_deny_and_suspend_the_agent(env):
    stack, keys = env

    async def go():
        for agent, canary in (("canary-a", CANARY), ("canary-b", AGENT_CANARY)):
            await expect(stack, keys, agent, "1 USDC", canary, "deny", "canary_payee")
            async with http_client(stack.url, keys[agent]) as c:
                err = await error(
                    c, "x402.initialize_payment", {"amount": "1 USDC", "recipient": KNOWN_ADDRESS}
                )
                assert err["code"] == "AGENT_SUSPENDED", err
        # An agent's own canary is not one for the others.
        await expect(stack, keys, "demo", "0.5 USDC", AGENT_CANARY, "allow", "tier")
        status, agents = stack.admin("GET", "/agents")
        assert status == 200
        standing = {a["agent_id"]: a["status"] for a in agents["agents"]}
        assert standing["canary-a"] == standing["canary-b"] == "suspended"
        assert standing[stack.info["agent_id"]] == standing["ops"] == "active"

    run(go())


def test_a_first_time_recipient_needs_approval_only_the_first_time(env):
    stack, keys = env

    async def go():
        to = fresh_recipient()
        sid, _ = await expect(
            stack, keys, "strict", "1 USDC", to, "needs_approval", "first_time_recipient"
        )
        decided = stack.clawfirst_json("approvals", "approve", sid, "--as", "alice")
        assert decided["approval"]["approvals"] == 1
        # Released without the agent: watched on the admin API (verify_settlement is polled in
        # test_approvals).
        deadline = asyncio.get_event_loop().time() + 30
        while stack.admin("GET", f"/sessions/{sid}")[1]["session"]["state"] != "finalized":
            assert asyncio.get_event_loop().time() < deadline, stack.admin(
                "GET", f"/sessions/{sid}"
            )
            await asyncio.sleep(0.3)
        await expect(stack, keys, "strict", "1 USDC", to, "allow", "tier")
        await expect(
            stack, keys, "strict", "1 USDC", fresh_recipient(), "needs_approval",
            "first_time_recipient",
        )  # fmt: skip

    run(go())


def test_policy_check_names_the_field_at_fault_and_warns_of_shadowed_tiers(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[groups]\nfinance = ["alice", "bob", "carol"]\n\n[defaults]\n'
        'per_transaction = { USDC = "100" }\n\n'
        '[[defaults.tiers]]\nname = "small"\nup_to = { USDC = "10" }\naction = "allow"\n\n'
        '[[defaults.tiers]]\nname = "large"\naction = "approve"\ngroup = "finance"\n'
        "approvals = 4\n"
    )
    refused = run_clawfirst("policy", "check", str(bad))
    assert refused.returncode != 0
    assert "defaults.tiers[1].approvals" in refused.stderr, refused.stderr

    shadowed = tmp_path / "shadowed.toml"
    shadowed.write_text(
        '[defaults]\nper_transaction = { USDC = "100" }\n\n'
        '[[defaults.tiers]]\nname = "all"\naction = "allow"\n\n'
        '[[defaults.tiers]]\nname = "never"\nup_to = { USDC = "10" }\naction = "deny"\n'
    )
    warned = run_clawfirst("policy", "check", str(shadowed))
    assert warned.returncode == 0, warned.stderr
    assert "warning: defaults.tiers[1]" in warned.stdout, warned.stdout
    assert "catch-all tier all" in warned.stdout, warned.stdout

    # The module's policy is valid: only its deliberate overlaps are warned about.
    good = tmp_path / "good.toml"
    good.write_text(policy_text())
    checked = run_clawfirst("policy", "check", str(good))
    assert checked.returncode == 0, checked.stderr
    assert "valid" in checked.stdout


def reload_events(stack) -> list[dict]:
    status, audit = stack.admin("GET", "/audit?limit=10000")
    assert status == 200, audit
    return [r for r in audit["records"] if r["event"] == "policy.reload"]


def test_reload_refuses_a_broken_file_and_applies_a_valid_one(env):
    """Runs last: it edits the policy of the running stack, then puts the original back."""
    stack, keys = env
    data = stack.data_dir
    original = stack.admin("GET", "/policy")[1]["version"]
    before = len(reload_events(stack))

    async def go():
        # A broken edit is refused; the policy in force still decides.
        write_policy(data, policy_text().replace('USDC = "300"', 'USDC = "-300"'))
        refused = stack.clawfirst("policy", "reload", check=False)
        assert refused.returncode != 0
        assert "defaults.per_transaction.USDC" in refused.stderr, refused.stderr
        assert stack.admin("GET", "/policy")[1]["version"] == original
        await expect(stack, keys, "demo", "1 USDC", KNOWN_ADDRESS, "allow", "tier")

        # A valid edit applies: the network allowlist no longer names localnet.
        write_policy(data, policy_text(networks='["devnet"]'))
        applied = stack.clawfirst_json("policy", "reload")
        assert applied["outcome"] in ("applied", "unchanged"), applied
        assert applied["version"] != original
        await expect(stack, keys, "demo", "1 USDC", KNOWN_ADDRESS, "deny", "network_not_allowed")

        # First-time recipients denied for the demo agent: one it paid is still paid.
        agent = stack.info["agent_id"]
        extra = f'\n[agents.{agent}]\nrecipients = {{ first_time = "deny" }}\n'
        write_policy(data, policy_text(extra))
        stack.clawfirst("policy", "reload")
        await expect(stack, keys, "demo", "1 USDC", KNOWN_ADDRESS, "allow", "tier")
        await expect(
            stack, keys, "demo", "1 USDC", fresh_recipient(), "deny", "first_time_recipient"
        )

        # Without a reload command the server notices a changed file by itself.
        write_policy(data, policy_text())
        checked = run_clawfirst("policy", "check", str(data / "policy.toml"), "--json")
        expected = json.loads(checked.stdout)["version"]
        assert expected == original
        deadline = asyncio.get_event_loop().time() + 10
        while stack.admin("GET", "/policy")[1]["version"] != expected:
            assert asyncio.get_event_loop().time() < deadline, "the change was not noticed"
            await asyncio.sleep(0.2)

    run(go())
    events = reload_events(stack)[before:]
    outcomes = [e["details"]["outcome"] for e in events]
    assert "refused" in outcomes and outcomes.count("applied") >= 3, events
    refusal = next(e for e in events if e["details"]["outcome"] == "refused")
    assert "defaults.per_transaction.USDC" in refusal["details"]["error"]
    assert refusal["details"]["version"] == original
    first_applied = next(e for e in events if e["details"]["outcome"] == "applied")
    assert first_applied["details"]["previous"] == original
