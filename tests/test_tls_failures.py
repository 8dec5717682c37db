"""TLS failures are split along OONI's failure strings where the cause is known: a loopback HTTPS
server presents certificates made at test time with ``openssl`` (a self-signed one, one for another
host name, one whose key usage forbids serving, a non-TLS answer), and the HTTP transport's
failure code and its OONI string are checked for each. No network: everything is on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from harness.failures import FAILURES, FailureCode
from harness.measure.request import fetch
from harness.measure.transport import Sender
from harness.platforms.registry import PlatformRegistry

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl (the command) is needed to make "
                                                                        "test certificates")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A private CA; leaves signed by it for 'localhost', for another host, and for client use only;
    and a self-signed leaf for 'localhost'."""
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=harness test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    leaves = {"good": ("localhost", "serverAuth"), "otherhost": ("other.example", "serverAuth"),
              "clientonly": ("localhost", "clientAuth")}
    for name, (host, usage) in leaves.items():
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{host}\nextendedKeyUsage={usage}\n"
                                       "basicConstraints=CA:FALSE\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={host}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "selfsigned.key", "-out", "selfsigned.pem",
             "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", cwd=d)
    return d


class _Server:
    """Accepts connections on 127.0.0.1 and answers with TLS using ``cert`` (or with plain text)."""

    def __init__(self, certs: Path, cert: str | None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(certs / f"{cert}.pem", certs / f"{cert}.key")
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.ctx is None:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                else:
                    with self.ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(65536)
                        body = b"<div class='result'>ok</div>"
                        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                                    + str(len(body)).encode() + b"\r\n\r\n" + body)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.sock.close()


def _failure(certs: Path, cert: str | None, trust_ca: bool) -> str | None:
    server = _Server(certs, cert)
    spec = PlatformRegistry.default(include_cwd=False).get("sandbox").model_copy(
        update={"base_url": f"https://localhost:{server.port}"})
    verify = ssl.create_default_context(cafile=str(certs / "ca.pem")) if trust_ca else None

    async def go():
        async with Sender.open(5, verify=verify) as sender:
            return await fetch(sender, spec, "天气")

    try:
        return asyncio.run(go()).classification.failure
    finally:
        server.close()


@pytest.mark.parametrize("cert, trust_ca, code, ooni", [
    ("selfsigned", False, "tls_unknown_authority", "ssl_unknown_authority"),
    ("good", False, "tls_unknown_authority", "ssl_unknown_authority"),  # a CA the client does not trust
    ("otherhost", True, "tls_invalid_hostname", "ssl_invalid_hostname"),
    ("clientonly", True, "tls_invalid_certificate", "ssl_invalid_certificate"),
    (None, True, "tls_error", "ssl_failed_handshake"),  # no TLS at all on the other side
])
def test_each_tls_failure_gets_ooni_s_name(certs, cert, trust_ca, code, ooni):
    assert _failure(certs, cert, trust_ca) == code
    assert FAILURES[FailureCode(code)].ooni == ooni and not FAILURES[FailureCode(code)].retried


def test_a_valid_certificate_is_no_failure(certs):
    """The control: the same server with a certificate the client trusts answers, and is classified."""
    assert _failure(certs, "good", True) is None
