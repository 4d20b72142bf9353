"""`clawfirst up` as a new user meets it: files, restart, stdio in both modes, the Inspector CLI."""

import asyncio
import json
import os
import stat
import subprocess
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from client import KNOWN_ADDRESS, balances, error, http_client, ok, pay
from conftest import Stack, binary

INSPECTOR = os.environ.get("MCP_INSPECTOR_CLI")


def run(coro):
    return asyncio.run(coro)


def test_up_writes_owner_only_files_and_resumes_the_same_state(tmp_path):
    data = tmp_path / "data"
    first = Stack(data).start()
    try:
        up_json = data / "up.json"
        assert stat.S_IMODE(up_json.stat().st_mode) == 0o600
        info = json.loads(up_json.read_text())
        assert set(info) >= {"mcp_url", "agent_id", "api_key", "admin_url"}
        assert info["api_key"].startswith("cfk_")
        for secret in ("grant.key", "wallet.key", "wallet.pass", "admin.token", "clawfirst.toml"):
            assert stat.S_IMODE((data / secret).stat().st_mode) == 0o600, secret
        sock = data / "signer.sock"
        assert stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0

        async def pay_once():
            async with http_client(first.url, first.api_key) as c:
                result = await pay(c, "1.5 USDC", KNOWN_ADDRESS)
                return result["init"]["session_id"], balances(await ok(c, "x402.query_balance", {}))

        session_id, before = run(pay_once())
    finally:
        assert first.stop() == 0

    second = Stack(data, port=first.port).start()
    try:
        assert second.api_key == first.api_key

        async def check():
            async with http_client(second.url, second.api_key) as c:
                again = await ok(c, "x402.verify_settlement", {"session_id": session_id})
                assert again["state"] == "finalized"
                assert balances(await ok(c, "x402.query_balance", {})) == before

        run(check())
    finally:
        assert second.stop() == 0


def stdio_params(data: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=binary("clawfirst"),
        args=["stdio", "--data-dir", str(data)],
        env={"CLAWFIRST_LOG": "warn", "PATH": os.environ.get("PATH", "")},
    )


def test_stdio_standalone_runs_the_stack_itself(tmp_path):
    async def go():
        async with Client(stdio_params(tmp_path / "data")) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert "x402.initialize_payment" in names
            result = await pay(c, "2 USDC", KNOWN_ADDRESS)
            assert result["final"]["state"] == "finalized"

    run(go())


def test_stdio_attaches_to_a_running_up(tmp_path):
    data = tmp_path / "data"
    up = Stack(data).start()
    try:

        async def go():
            async with Client(stdio_params(data)) as c:
                result = await pay(c, "0.5 USDC", KNOWN_ADDRESS)
                session_id = result["init"]["session_id"]
            # The same session is visible over HTTP: one server, one state.
            async with http_client(up.url, up.api_key) as c:
                seen = await ok(c, "x402.verify_settlement", {"session_id": session_id})
                assert seen["state"] == "finalized"

        run(go())
    finally:
        up.stop()


def inspector(*args: str) -> subprocess.CompletedProcess:
    assert INSPECTOR, "MCP_INSPECTOR_CLI is not set: run scripts/test, which installs the Inspector"
    # The Inspector needs Node 22, installed beside it by scripts/test.
    env = dict(os.environ, PATH=f"{Path(INSPECTOR).parent}:{os.environ.get('PATH', '')}")
    return subprocess.run(
        [INSPECTOR, "--cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def first_json(text: str) -> dict:
    """The first JSON document the Inspector printed (it may print an error object after it)."""
    return json.JSONDecoder().raw_decode(text.strip())[0]


def test_the_mcp_inspector_cli_lists_and_calls_tools_over_http_and_stdio(tmp_path):
    data = tmp_path / "data"
    up = Stack(data).start()
    try:
        http = [up.url, "--header", f"Authorization: Bearer {up.api_key}"]
        stdio = [binary("clawfirst"), "stdio", "--data-dir", str(data)]
        for target in (http, stdio):
            listed = inspector(*target, "--method", "tools/list")
            assert listed.returncode == 0, listed.stderr
            names = {t["name"] for t in first_json(listed.stdout)["tools"]}
            assert len(names) == 6 and "x402.query_balance" in names

            called = inspector(
                *target, "--method", "tools/call", "--tool-name", "x402.query_balance"
            )
            assert called.returncode == 0, called.stderr
            envelope = first_json(called.stdout)["structuredContent"]
            assert envelope["success"] is True
            assert {b["asset"] for b in envelope["result"]["balances"]} == {"SOL", "USDC", "BONK"}

            bad = inspector(
                *target,
                "--method",
                "tools/call",
                "--tool-name",
                "x402.initialize_payment",
                "--tool-arg",
                "amount=1e3 USDC",
                f"recipient={KNOWN_ADDRESS}",
            )
            result = first_json(bad.stdout)
            assert result["isError"] is True and bad.returncode != 0
            assert result["structuredContent"]["error"]["code"] == "INVALID_INPUT"
            assert result["structuredContent"]["error"]["details"]["field"] == "amount"

        # Without the API key the HTTP endpoint lets the Inspector in no further than a 401.
        refused = inspector(up.url, "--method", "tools/list")
        assert refused.returncode != 0
    finally:
        up.stop()


def caps_policy(usdc_per_transaction: str, usdc_daily: str) -> str:
    """A policy file with `up`'s caps, except USDC's."""
    return (
        "[defaults]\n"
        f'per_transaction = {{ SOL = "10", USDC = "{usdc_per_transaction}", BONK = "10000000" }}\n'
        f'daily = {{ SOL = "50", USDC = "{usdc_daily}", BONK = "100000000" }}\n'
    )


def restarted_with(
    data: Path, *replacements: tuple[str, str], policy: str | None = None
) -> Stack:
    """Creates a data directory, edits its clawfirst.toml (and replaces its policy.toml), and
    starts `up` on it again."""
    first = Stack(data).start()
    first.stop()
    config = data / "clawfirst.toml"
    text = config.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    if policy is not None:
        (data / "policy.toml").write_text(policy)
    return Stack(data, port=first.port).start()


def test_underscore_tool_names_are_offered_when_configured(tmp_path):
    up = restarted_with(tmp_path / "data", ('tool_naming = "dotted"', 'tool_naming = "underscore"'))
    try:

        async def go():
            async with http_client(up.url, up.api_key) as c:
                names = {t.name for t in (await c.list_tools()).tools}
                assert "x402_initialize_payment" in names and "x402.initialize_payment" not in names
                await pay(c, "1 USDC", KNOWN_ADDRESS, prefix="x402_")
                err = await error(c, "x402_initialize_payment", {"amount": "1 USDC"})
                assert err["details"]["field"] == "recipient"

        run(go())
    finally:
        up.stop()


def test_the_daily_cap_counts_every_payment_and_names_its_rule(tmp_path):
    up = restarted_with(tmp_path / "data", policy=caps_policy("6", "10"))
    try:

        async def go():
            async with http_client(up.url, up.api_key) as c:
                await pay(c, "6 USDC", KNOWN_ADDRESS)
                init = await ok(
                    c, "x402.initialize_payment", {"amount": "5 USDC", "recipient": KNOWN_ADDRESS}
                )
                err = await error(
                    c, "x402.authorize_transaction", {"session_id": init["session_id"]}
                )
                assert err["code"] == "POLICY_VIOLATION"
                assert err["details"]["rule"] == "daily_cap"
                # Exactly up to the cap is allowed.
                await pay(c, "4 USDC", KNOWN_ADDRESS)
                over = await ok(
                    c,
                    "x402.initialize_payment",
                    {"amount": "0.000001 USDC", "recipient": KNOWN_ADDRESS},
                )
                err = await error(
                    c, "x402.authorize_transaction", {"session_id": over["session_id"]}
                )
                assert err["details"]["rule"] == "daily_cap"

        run(go())
    finally:
        up.stop()


def test_no_secret_reaches_the_logs_at_debug_level(tmp_path):
    data = tmp_path / "data"
    up = Stack(data, log_level="debug").start()
    try:

        async def go():
            async with http_client(up.url, up.api_key) as c:
                await pay(c, "1 USDC", KNOWN_ADDRESS, purpose="audit check")
                await error(
                    c, "x402.initialize_payment", {"amount": "1e3 USDC", "recipient": KNOWN_ADDRESS}
                )

        run(go())
    finally:
        up.stop()
    server_log = up.log_path.read_text(errors="replace")
    signer_log = (data / "signer.log").read_text(errors="replace")
    assert "DEBUG" in server_log, "the debug log must not be empty"
    # Payloads (tool arguments, results) stay out of the log below trace.
    assert "CallToolRequest" not in server_log and "audit check" not in server_log
    secrets = {
        "api key": up.api_key.split("_", 2)[2],
        "admin token": (data / "admin.token").read_text().strip(),
        "grant key": (data / "grant.key").read_text().strip(),
        "wallet passphrase": (data / "wallet.pass").read_text().strip(),
    }
    for name, secret in secrets.items():
        assert secret not in server_log, f"the {name} is in the server log"
        assert secret not in signer_log, f"the {name} is in the signer log"


def test_an_unsubmitted_session_expires(tmp_path):
    up = restarted_with(tmp_path / "data", ("ttl_seconds = 900", "ttl_seconds = 10"))
    try:

        async def go():
            async with http_client(up.url, up.api_key) as c:
                init = await ok(
                    c, "x402.initialize_payment", {"amount": "1 USDC", "recipient": KNOWN_ADDRESS}
                )
                await asyncio.sleep(11.5)
                err = await error(
                    c, "x402.authorize_transaction", {"session_id": init["session_id"]}
                )
                assert err["code"] == "SESSION_EXPIRED"
                seen = await ok(c, "x402.verify_settlement", {"session_id": init["session_id"]})
                assert seen["state"] == "expired"

        run(go())
    finally:
        up.stop()


def test_the_signers_own_floor_holds_when_the_server_allows_more(tmp_path):
    # The server's caps are raised above the signer's floor (signer.toml is left as `up` wrote it).
    up = restarted_with(tmp_path / "data", policy=caps_policy("2000", "10000"))
    try:

        async def go():
            async with http_client(up.url, up.api_key) as c:
                before = balances(await ok(c, "x402.query_balance", {}))
                init = await ok(
                    c,
                    "x402.initialize_payment",
                    {"amount": "1500 USDC", "recipient": KNOWN_ADDRESS},
                )
                err = await error(
                    c, "x402.authorize_transaction", {"session_id": init["session_id"]}
                )
                assert err["code"] == "POLICY_VIOLATION"
                assert err["details"]["rule"] == "signer_floor"
                seen = await ok(c, "x402.verify_settlement", {"session_id": init["session_id"]})
                assert seen["state"] == "failed" and seen["signature"] is None
                assert balances(await ok(c, "x402.query_balance", {})) == before
                # Within the floor the same agent still pays.
                await pay(c, "1000 USDC", KNOWN_ADDRESS)

        run(go())
    finally:
        up.stop()
