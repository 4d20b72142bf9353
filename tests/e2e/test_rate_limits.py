"""Per-agent rate limits through a real MCP client: open sessions, payments per minute and tool
calls per minute each refuse with RATE_LIMIT_EXCEEDED, name the limit and say when to retry."""

import asyncio
import time

from client import KNOWN_ADDRESS, call, error, http_client, ok
from test_lifecycle import restarted_with

LIMITS = (
    ("tool_calls_per_minute = 6000", "tool_calls_per_minute = 25"),
    ("payments_per_minute = 600", "payments_per_minute = 3"),
    ("open_sessions = 1000", "open_sessions = 2"),
)


def wait_for_a_fresh_minute():
    """The minute counters use fixed windows: start early in one so the test cannot straddle
    two."""
    if time.time() % 60 > 35:
        time.sleep(60 - time.time() % 60 + 0.5)


def test_each_rate_limit_refuses_names_itself_and_says_when_to_retry(tmp_path):
    up = restarted_with(tmp_path / "data", *LIMITS)
    try:
        wait_for_a_fresh_minute()

        async def go():
            async with http_client(up.url, up.api_key) as c:
                intent = {"amount": "1 USDC", "recipient": KNOWN_ADDRESS}
                first = await ok(c, "x402.initialize_payment", intent)
                await ok(c, "x402.initialize_payment", intent)

                # Two sessions open: a third is refused, and the refusal uses no payment.
                err = await error(c, "x402.initialize_payment", intent)
                assert err["code"] == "RATE_LIMIT_EXCEEDED", err
                assert err["details"]["limit_name"] == "open_sessions"
                assert err["details"]["limit"] == 2 and err["details"]["retry_after"] >= 1
                assert err["retryable"] is True

                # Closing one makes room; the minute then allows three payments in all.
                await ok(c, "x402.cancel_payment", {"session_id": first["session_id"]})
                third = await ok(c, "x402.initialize_payment", intent)
                await ok(c, "x402.cancel_payment", {"session_id": third["session_id"]})
                err = await error(c, "x402.initialize_payment", intent)
                assert err["details"]["limit_name"] == "payments_per_minute", err
                assert 1 <= err["details"]["retry_after"] <= 60

                # Every tool call counts against the per-minute call limit, shown in each
                # response, until a call is refused.
                remaining = []
                while True:
                    env = await call(c, "x402.query_balance", {})
                    if not env["success"]:
                        break
                    remaining.append(env["rate_limit"]["remaining"])
                assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
                assert env["error"]["code"] == "RATE_LIMIT_EXCEEDED"
                assert env["error"]["details"]["limit_name"] == "tool_calls_per_minute"
                assert env["error"]["details"]["limit"] == 25

        asyncio.run(go())
    finally:
        up.stop()
