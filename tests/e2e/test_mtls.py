"""HTTPS and mutual TLS through a real MCP client: `clawfirst ca` makes the operator CA and the
server certificate, `agents add --mtls` issues an agent its client certificate, and the agent
pays over HTTPS with no bearer token. Clients without a certificate, with one from another CA
or with an expired one never get past the handshake; a delegation token bound to another
certificate is a 401 with its reason audited; with `client_auth = "optional"` an API key, a JWT
and a delegation token each pay over HTTPS; rotating an agent's certificate voids the old one."""

import asyncio
import datetime
import json
import os
import socket
import ssl
import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from client import KNOWN_ADDRESS, ok, pay
from conftest import Stack, binary

TLS_SECTION = """
[tls]
cert_file = "tls/server.pem"
key_file = "tls/server.key"
client_ca_file = "ca/operator-ca.pem"
client_auth = "{client_auth}"
"""


class TlsStack(Stack):
    """`clawfirst up` serving HTTPS: healthy once its port takes connections (a health check
    over HTTP would be refused, and one over mutual TLS would need a certificate)."""

    def start(self) -> "TlsStack":
        log = open(self.data_dir.parent / f"{self.data_dir.name}-up.log", "ab")
        self.proc = subprocess.Popen(
            [binary("clawfirst"), "up", "--data-dir", str(self.data_dir), "--json"],
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(os.environ, CLAWFIRST_LOG=os.environ.get("CLAWFIRST_LOG", "warn")),
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            pytest.fail(f"clawfirst up exited with {self.proc.returncode}")
        self.info = json.loads(line)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        pytest.fail("clawfirst up did not listen")


def tls_stack(data: Path, client_auth: str, extra: str = "") -> TlsStack:
    """A data directory with the operator CA, a server certificate for 127.0.0.1 and [tls] on,
    and `extra` appended to the configuration."""
    first = Stack(data).start()
    first.stop()
    for args in (
        ("ca", "init"),
        ("ca", "server-cert", "--dns", "localhost", "--ip", "127.0.0.1", "--days", "2"),
    ):
        done = subprocess.run(
            [binary("clawfirst"), *args, "--data-dir", str(data)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    config = data / "clawfirst.toml"
    config.write_text(config.read_text() + TLS_SECTION.format(client_auth=client_auth) + extra)
    stack = TlsStack(data, port=first.port).start()
    assert stack.url.startswith("https://127.0.0.1:")
    return stack


def context(data: Path, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    """Trusts only the operator CA; presents `cert` (certificate, key) if given."""
    ctx = ssl.create_default_context(cafile=str(data / "ca" / "operator-ca.pem"))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


@asynccontextmanager
async def tls_client(url: str, ctx: ssl.SSLContext, bearer: str | None = None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    http = httpx2.AsyncClient(verify=ctx, headers=headers, timeout=httpx2.Timeout(30, read=300))
    async with http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


def tools_list(url: str, ctx: ssl.SSLContext, bearer: str | None = None) -> int:
    """The status of a tools/list request; raises httpx2.TransportError if the TLS layer
    refuses the connection."""
    headers = {"Accept": "application/json, text/event-stream"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    with httpx2.Client(verify=ctx, timeout=10) as http:
        return http.post(url, json=body, headers=headers).status_code


def audit(stack: Stack, ctx: ssl.SSLContext) -> list[dict]:
    with httpx2.Client(verify=ctx, timeout=10) as http:
        response = http.get(
            f"{stack.admin_url}/audit?limit=10000",
            headers={"Authorization": f"Bearer {stack.info['admin_token']}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["records"]


def auth_failures(records: list[dict]) -> list[tuple[str, str]]:
    """(method, reason) of every `auth.failed` audit record."""
    return [
        (r["details"]["method"], r["details"]["reason"])
        for r in records
        if r["event"] == "auth.failed"
    ]


def add_mtls_agent(stack: Stack, agent_id: str) -> dict:
    added = stack.clawfirst_json("agents", "add", agent_id, "--mtls", "--days", "2")
    assert Path(added["cert_file"]).name == f"{agent_id}.pem"
    assert (Path(added["key_file"]).stat().st_mode & 0o777) == 0o600
    assert len(added["certificate_sha256"]) == 64
    return added


def expired_certificate(data: Path, agent_id: str, out: Path) -> tuple[Path, Path]:
    """A client certificate for `agent_id` signed by the operator CA's key, expired yesterday."""
    return ca_certificate(data, agent_id, out, "expired", -10, -1)


def ca_certificate(
    data: Path, agent_id: str, out: Path, name: str, from_days: int, to_days: int
) -> tuple[Path, Path]:
    """A client certificate for `agent_id` signed by the operator CA's key, valid from
    `from_days` to `to_days` days from now."""
    ca_cert = x509.load_pem_x509_certificate((data / "ca" / "operator-ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key(
        (data / "ca" / "operator-ca.key").read_bytes(), password=None
    )
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=from_days))
        .not_valid_after(now + datetime.timedelta(days=to_days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:clawfirst:agent:{agent_id}")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = out / f"{name}.pem", out / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def foreign_certificate(agent_id: str, out: Path) -> tuple[Path, Path]:
    """A valid client certificate for `agent_id` from a CA the server does not trust."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ClawFirst operator CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id)]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:clawfirst:agent:{agent_id}")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = out / "foreign.pem", out / "foreign.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_an_agent_pays_by_its_certificate_and_others_are_refused_in_the_handshake(tmp_path):
    data = tmp_path / "data"
    stack = tls_stack(data, "required")
    try:
        added = add_mtls_agent(stack, "mtls-agent")
        mine = (Path(added["cert_file"]), Path(added["key_file"]))

        async def pays():
            async with tls_client(stack.url, context(data, mine)) as c:
                result = await pay(c, "1 USDC", KNOWN_ADDRESS)
                assert result["final"]["state"] == "finalized"
                wallet = await ok(c, "x402.query_balance", {})
                assert wallet["balances"]

        asyncio.run(pays())

        refused = [
            None,
            foreign_certificate("mtls-agent", tmp_path),
            expired_certificate(data, "mtls-agent", tmp_path),
        ]
        for cert in refused:
            with pytest.raises(httpx2.TransportError):
                tools_list(stack.url, context(data, cert))

        # Presented with its own certificate, a token bound to another certificate is refused.
        other = add_mtls_agent(stack, "other-agent")
        token = stack.clawfirst_json(
            "agents",
            "token",
            "mtls-agent",
            "--ttl",
            "10m",
            "--bind-cert-sha256",
            other["certificate_sha256"],
        )["token"]
        assert tools_list(stack.url, context(data, mine), bearer=token) == 401
        bound = stack.clawfirst_json(
            "agents",
            "token",
            "mtls-agent",
            "--ttl",
            "10m",
            "--bind-cert-sha256",
            added["certificate_sha256"],
        )["token"]
        assert tools_list(stack.url, context(data, mine), bearer=bound) == 200

        # Revoked, the agent's certificate no longer admits it.
        stack.clawfirst_json("agents", "revoke", "mtls-agent")
        assert tools_list(stack.url, context(data, mine)) == 401

        records = audit(stack, context(data, mine))
        failures = auth_failures(records)
        assert ("mtls", "no_client_certificate") in failures, failures
        assert ("delegation_token", "token_bound_to_other_certificate") in failures, failures
        assert ("mtls", "agent revoked") in failures, failures
        assert token not in json.dumps(records) and bound not in json.dumps(records)
        assert stack.stop() == 0
    finally:
        stack.stop()


def test_with_optional_client_auth_bearer_credentials_pay_over_https(tmp_path):
    """An API key, a JWT from the operator's identity provider and a delegation token each pay
    over HTTPS through the MCP SDK, with no client certificate."""
    from test_jwt import AUDIENCE, ISSUER, jwks, token
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = tmp_path / "data"
    idp_key = Ed25519PrivateKey.generate()
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwks(idp_key, "k1")]}))
    jwt_section = (
        "\n[auth.jwt]\n"
        f'issuers = ["{ISSUER}"]\naudience = "{AUDIENCE}"\nalgorithms = ["EdDSA"]\n'
        'jwks_file = "../jwks.json"\n'
    )
    stack = tls_stack(data, "optional", extra=jwt_section)
    try:
        anonymous = context(data, None)
        assert tools_list(stack.url, anonymous) == 401
        delegation = stack.clawfirst_json("agents", "token", "demo-agent", "--ttl", "10m")
        credentials = {
            "api key": stack.api_key,
            "jwt": token(idp_key, {}),
            "delegation token": delegation["token"],
        }
        for name, credential in credentials.items():
            assert tools_list(stack.url, anonymous, bearer=credential) == 200, name

        async def pays(credential: str):
            async with tls_client(stack.url, anonymous, bearer=credential) as c:
                result = await pay(c, "0.5 USDC", KNOWN_ADDRESS)
                assert result["final"]["state"] == "finalized"

        for name, credential in credentials.items():
            asyncio.run(pays(credential))

        # A certificate, when presented, must still come from the operator CA.
        with pytest.raises(httpx2.TransportError):
            tools_list(stack.url, context(data, foreign_certificate("demo-agent", tmp_path)))
        added = add_mtls_agent(stack, "cert-agent")
        mine = (Path(added["cert_file"]), Path(added["key_file"]))
        assert tools_list(stack.url, context(data, mine)) == 200
        assert stack.stop() == 0
    finally:
        stack.stop()


def test_rotating_an_agents_certificate_voids_the_old_one_at_once(tmp_path):
    data = tmp_path / "data"
    stack = tls_stack(data, "required")
    try:
        added = add_mtls_agent(stack, "rotating-cert")
        old_dir = tmp_path / "old"
        old_dir.mkdir()
        old = (old_dir / "old.pem", old_dir / "old.key")
        old[0].write_bytes(Path(added["cert_file"]).read_bytes())
        old[1].write_bytes(Path(added["key_file"]).read_bytes())
        assert tools_list(stack.url, context(data, old)) == 200

        # Another certificate from the same CA naming the agent is refused: the agent is
        # pinned to the one `agents add --mtls` issued.
        twin = ca_certificate(data, "rotating-cert", tmp_path, "twin", -1, 1)
        assert tools_list(stack.url, context(data, twin)) == 401

        rotated = stack.clawfirst_json("agents", "rotate", "rotating-cert", "--mtls", "--days", "2")
        new = (Path(rotated["cert_file"]), Path(rotated["key_file"]))
        assert new[0] == Path(added["cert_file"])
        assert rotated["certificate_sha256"] != added["certificate_sha256"]
        assert rotated["credential_generation"] == 1

        # The old certificate still passes the handshake (the CA signed it) but no longer
        # names a usable agent; the new one does, and pays.
        assert tools_list(stack.url, context(data, old)) == 401
        assert tools_list(stack.url, context(data, new)) == 200

        async def pays():
            async with tls_client(stack.url, context(data, new)) as c:
                result = await pay(c, "1 USDC", KNOWN_ADDRESS)
                assert result["final"]["state"] == "finalized"

        asyncio.run(pays())

        # Lifting the pin lets any certificate of the CA naming the agent in again; pinning
        # by hash (an operator's own PKI) picks one.
        cleared = stack.clawfirst_json("agents", "pin-cert", "rotating-cert", "--clear")
        assert cleared["certificate_sha256"] is None
        assert tools_list(stack.url, context(data, old)) == 200
        stack.clawfirst_json("agents", "pin-cert", "rotating-cert", added["certificate_sha256"])
        assert tools_list(stack.url, context(data, old)) == 200
        assert tools_list(stack.url, context(data, new)) == 401

        bad = subprocess.run(
            [binary("clawfirst"), "agents", "pin-cert", "rotating-cert", "xyz",
             "--data-dir", str(data)],
            capture_output=True,
            text=True,
        )
        assert bad.returncode != 0 and "64 hex digits" in bad.stderr

        records = audit(stack, context(data, new))
        failures = auth_failures(records)
        assert ("mtls", "certificate_replaced") in failures, failures
        events = {r["event"] for r in records}
        assert {"agent.rotated", "agent.certificate_pinned"} <= events
        assert stack.stop() == 0
    finally:
        stack.stop()
