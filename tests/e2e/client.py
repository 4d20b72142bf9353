"""A small helper around the official MCP Python SDK client."""

import asyncio
import json
from contextlib import asynccontextmanager

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

KNOWN_ADDRESS = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


@asynccontextmanager
async def http_client(url: str, api_key: str):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"})
    async with http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


def envelope(result) -> dict:
    """The ClawFirst envelope of a tool result: structured content, also present as JSON text."""
    structured = result.structured_content
    text = json.loads(result.content[0].text)
    assert structured == text, "structuredContent and text content differ"
    assert bool(result.is_error) == (not structured["success"])
    return structured


async def call(client, tool: str, args: dict) -> dict:
    return envelope(await client.call_tool(tool, args))


async def ok(client, tool: str, args: dict) -> dict:
    env = await call(client, tool, args)
    assert env["success"], env
    assert set(env["rate_limit"]) == {"limit", "remaining", "reset_at"}
    return env["result"]


async def error(client, tool: str, args: dict) -> dict:
    env = await call(client, tool, args)
    assert not env["success"], env
    assert isinstance(env["timestamp"], int)
    return env["error"]


def balances(result: dict) -> dict:
    return {b["asset"]: int(b["base_units"]) for b in result["balances"]}


async def wait_finalized(
    client, session_id: str, prefix: str = "x402.", timeout: float = 60
) -> dict:
    deadline = asyncio.get_event_loop().time() + timeout
    while True:
        r = await ok(client, f"{prefix}verify_settlement", {"session_id": session_id})
        if r["state"] == "finalized":
            assert r["settled"] is True
            return r
        assert r["state"] in ("submitted", "confirmed"), r
        if asyncio.get_event_loop().time() > deadline:
            raise AssertionError(f"not finalized in time: {r}")
        await asyncio.sleep(0.3)


async def pay(client, amount: str, recipient: str, prefix: str = "x402.", **extra) -> dict:
    init = await ok(
        client, f"{prefix}initialize_payment", {"amount": amount, "recipient": recipient, **extra}
    )
    assert init["state"] == "initialized"
    auth = await ok(client, f"{prefix}authorize_transaction", {"session_id": init["session_id"]})
    assert auth["state"] in ("submitted", "confirmed", "finalized"), auth
    assert auth["signature"]
    final = await wait_finalized(client, init["session_id"], prefix)
    return {"init": init, "auth": auth, "final": final}


def fresh_recipient() -> str:
    """A random address nobody has paid."""
    import secrets

    import base58_local

    return base58_local.encode(secrets.token_bytes(32))


async def wait_state(client, session_id: str, states: set[str], timeout: float = 30) -> dict:
    """Polls verify_settlement until the session is in one of `states`."""
    deadline = asyncio.get_event_loop().time() + timeout
    while True:
        r = await ok(client, "x402.verify_settlement", {"session_id": session_id})
        if r["state"] in states:
            return r
        if asyncio.get_event_loop().time() > deadline:
            raise AssertionError(f"not in {states} in time: {r}")
        await asyncio.sleep(0.2)
