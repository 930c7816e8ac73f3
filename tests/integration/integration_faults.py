"""Misbehaving upstreams and certificates for the fault, lifecycle and TLS tests.

Strategy: each fault is a real server on a loopback port, not a mock: a raw asyncio TCP
server for the HTTP/1.1 and TCP-level faults (it never answers; it resets the connection
after reading part of the request; it answers canned HTTP/1.1 bytes), and the suite's own
capturing upstreams (integration_support.py) bound to a port the test chooses, so a test
can stop one and start another in its place, or serve it over TLS. Certificates are made
in the test run with the ``cryptography`` package: one ``Pki`` per session holds a CA, a
server certificate for 127.0.0.1/localhost, a client certificate, and a second, unrelated
CA with a client certificate of its own (the "wrong CA" cases).

Everything runs on the suite's LoopThread; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import http.client
import ipaddress
import socket
import ssl
import struct
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from integration_support import Answer, GrpcCapture, GrpcResult, HttpCapture

# --- raw TCP fault servers ----------------------------------------------------------------

HOLD_SECONDS = 30.0  # a server that never answers keeps a connection this long at most


class RawServer:
    """A TCP server on 127.0.0.1 whose connections get ``behaviour``:

    - ``"blackhole"``: accept, read whatever comes, never answer (a hung upstream);
    - ``"answer"``: read one HTTP/1.1 request (headers + Content-Length body), write
      ``response`` bytes as they are, close.
    ``connections`` counts accepted connections; ``requests`` keeps the raw bytes read."""

    def __init__(self, behaviour: str, *, response: bytes = b"", port: int = 0):
        assert behaviour in ("blackhole", "answer")
        self.behaviour = behaviour
        self.response = response
        self.port = port
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> "RawServer":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self.server.wait_closed()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            if self.behaviour == "blackhole":
                await asyncio.wait_for(_drain(reader), HOLD_SECONDS)
            else:
                self.requests.append(await asyncio.wait_for(_read_http_request(reader), HOLD_SECONDS))
                writer.write(self.response)
                await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class ResettingRelay:
    """A TCP relay in front of a real upstream. While ``reset_after`` is set, every
    connection is cut once that many bytes came from the proxy: that part is relayed, then
    both sides are closed with SO_LINGER 0, i.e. RST — an upstream that died in the middle
    of reading a request. With ``reset_after`` None it relays faithfully."""

    def __init__(self, upstream_port: int, reset_after: int | None):
        self.upstream_port = upstream_port
        self.reset_after = reset_after
        self.port = 0
        self.resets = 0
        self.server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> "ResettingRelay":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        up_writer = None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            limit = self.reset_after

            async def from_proxy() -> None:
                passed = 0
                while data := await reader.read(65536):
                    if limit is not None and passed + len(data) >= limit:
                        up_writer.write(data[:limit - passed])
                        await up_writer.drain()
                        self.resets += 1
                        return
                    passed += len(data)
                    up_writer.write(data)
                    await up_writer.drain()

            async def from_upstream() -> None:
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()

            pumps = [asyncio.create_task(from_proxy()), asyncio.create_task(from_upstream())]
            try:
                await asyncio.wait(pumps, timeout=HOLD_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            reset(writer)
            if up_writer is not None:
                reset(up_writer)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with RST (SO_LINGER on, timeout 0), not FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def _read_http_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + await reader.readexactly(length)


def http_response(status: int, reason: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """Canned HTTP/1.1 response bytes, as a misbehaving upstream would write them."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- capturing upstreams on a chosen port, optionally over TLS ------------------------------


class Scripted:
    """Mixin for a capture: answers ``script`` in order (one Answer per request), then
    whatever ``answer`` was set to (plain OK by default)."""

    script: list[Answer]

    @property
    def answer(self) -> Answer:
        script = self.__dict__.setdefault("script", [])
        return script.pop(0) if script else self.__dict__.get("_answer", Answer())

    @answer.setter
    def answer(self, value: Answer) -> None:
        self.__dict__["_answer"] = value


class GrpcCaptureAt(Scripted, GrpcCapture):
    """The suite's gRPC capture (port, TLS) answering a script first."""

    def __init__(self, port: int = 0, credentials: grpc.ServerCredentials | None = None,
                 script: list[Answer] | None = None):
        super().__init__(port, credentials)
        self.script = list(script or ())


class HttpCaptureAt(Scripted, HttpCapture):
    """The suite's OTLP/HTTP capture (port, TLS) answering a script first."""

    def __init__(self, port: int = 0, ssl_context: ssl.SSLContext | None = None,
                 script: list[Answer] | None = None):
        super().__init__(port, ssl_context)
        self.script = list(script or ())


# --- certificates -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Identity:
    cert: Path  # PEM
    key: Path  # PEM, unencrypted

    def read(self) -> tuple[bytes, bytes]:
        return self.cert.read_bytes(), self.key.read_bytes()


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: Path  # the CA the proxy, the clients and the upstreams trust
    server: Identity  # CN=localhost, SAN localhost + 127.0.0.1, signed by ca
    client: Identity  # a client certificate signed by ca
    wrong_ca: Path  # an unrelated CA
    wrong_server: Identity  # a server certificate for 127.0.0.1 signed by wrong_ca
    wrong_client: Identity  # a client certificate signed by wrong_ca


def make_pki(directory: Path) -> Pki:
    """Write a complete test PKI to ``directory`` (EC P-256 keys: fast to make)."""
    ca_cert, ca_key = _ca("redact-proxy test CA", directory / "ca")
    wrong_cert, wrong_key = _ca("unrelated test CA", directory / "wrong-ca")
    return Pki(
        ca=directory / "ca.crt",
        server=_leaf("localhost", directory / "server", ca_cert, ca_key, server=True),
        client=_leaf("otel-sdk-client", directory / "client", ca_cert, ca_key, server=False),
        wrong_ca=directory / "wrong-ca.crt",
        wrong_server=_leaf("localhost", directory / "wrong-server", wrong_cert, wrong_key, server=True),
        wrong_client=_leaf("impostor-client", directory / "wrong-client", wrong_cert, wrong_key, server=False),
    )


def _name(common_name: str):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(stem: Path, cert, key) -> Identity:
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Identity(cert_path, key_path)


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))


def _ca(common_name: str, stem: Path):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _validity(x509.CertificateBuilder()).subject_name(_name(common_name)).issuer_name(_name(common_name))
    cert = (builder.public_key(key.public_key()).serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(stem, cert, key)
    return cert, key


def _leaf(common_name: str, stem: Path, ca_cert, ca_key, *, server: bool) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_validity(x509.CertificateBuilder()).subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return _write(stem, builder.sign(ca_key, hashes.SHA256()), key)


def server_ssl_context(pki: Pki, *, client_ca: Path | None = None, identity: Identity | None = None) -> ssl.SSLContext:
    """An aiohttp server context with the PKI's server certificate; with ``client_ca``,
    client certificates signed by it are required (mTLS)."""
    identity = identity or pki.server
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(identity.cert), str(identity.key))
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def grpc_server_credentials(pki: Pki, *, client_ca: Path | None = None,
                            identity: Identity | None = None) -> grpc.ServerCredentials:
    cert, key = (identity or pki.server).read()
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca.read_bytes() if client_ca else None,
                                       require_client_auth=client_ca is not None)


# --- TLS clients (raw: the refusal cases want the exact failure, not an SDK's retries) --------


def grpc_call_tls(target: str, method: str, body: bytes, credentials: grpc.ChannelCredentials,
                  timeout: float = 10.0) -> GrpcResult:
    """One unary call over TLS with the real grpc client, on raw bytes."""
    with grpc.secure_channel(target, credentials) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            response, info = call.with_call(body, timeout=timeout)
        except grpc.RpcError as exc:
            return GrpcResult(exc.code(), None, exc.details(), tuple(exc.trailing_metadata() or ()))
        return GrpcResult(grpc.StatusCode.OK, response, None, tuple(info.trailing_metadata() or ()))


def client_credentials(pki: Pki, *, ca: Path | None = None, identity: Identity | None = None):
    """grpc channel credentials trusting ``ca`` (default: the PKI's CA), presenting
    ``identity`` as the client certificate when given."""
    cert, key = identity.read() if identity else (None, None)
    return grpc.ssl_channel_credentials(root_certificates=(ca or pki.ca).read_bytes(), private_key=key,
                                        certificate_chain=cert)


def client_ssl_context(pki: Pki, *, ca: Path | None = None, identity: Identity | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca or pki.ca))
    if identity is not None:
        ctx.load_cert_chain(str(identity.cert), str(identity.key))
    return ctx


def https_post(port: int, path: str, body: bytes, context: ssl.SSLContext, headers: dict | None = None,
               timeout: float = 10.0) -> int:
    """POST over HTTPS with the standard library; returns the status, or raises the TLS or
    connection error (OSError) the handshake ended with."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
