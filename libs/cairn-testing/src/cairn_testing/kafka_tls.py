"""A real TLS Kafka endpoint for tests: a private Tansu broker behind a TLS-terminating proxy.

Tansu 0.6 serves plain TCP only, so `tls_broker` starts a private Tansu (memory storage, its own
port) that advertises the proxy's TLS port, and an asyncio proxy (Python's `ssl`, i.e. OpenSSL) that
terminates TLS in front of it: a client bootstraps through TLS and reconnects through TLS to the
advertised address. `CertificateAuthority` makes the CA and certificates with `cryptography`.

    async with tls_broker(tmp_path) as broker:
        settings = ServiceSettings(kafka_bootstrap=broker.bootstrap, kafka_security_protocol="SSL",
                                   kafka_ssl_cafile=str(broker.ca_file))
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cairn_localstack.binaries import tansu_binary
from cairn_testing.processes import free_port

__all__ = ["CertificateAuthority", "TlsBroker", "TlsProxy", "tls_broker"]

_LIFETIME = datetime.timedelta(days=2)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _subject_names(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


class CertificateAuthority:
    """A throw-away CA (P-256) that issues server and client certificates as PEM files."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def write(self, path: Path) -> Path:
        """Write the CA certificate (what clients trust) to `path`; returns it."""
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(
        self, folder: Path, stem: str, names: Sequence[str], *, client: bool = False
    ) -> tuple[Path, Path]:
        """A certificate for `names` (DNS names or IP addresses; the first is also the common name),
        written as `<stem>.pem` and `<stem>.key` under `folder`: (certificate, key)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(_subject_names(names)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        cert_path = folder / f"{stem}.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cert_path, _write_key(key, folder / f"{stem}.key")


@dataclass
class TlsProxy:
    """Terminates TLS on `host:port` and relays each connection to `upstream` in plain TCP.

    With `client_ca`, clients must present a certificate signed by it (mutual TLS)."""

    certfile: Path
    keyfile: Path
    upstream: tuple[str, int]
    host: str = "127.0.0.1"
    port: int = 0
    client_ca: Path | None = None
    _server: asyncio.Server | None = field(default=None, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def _context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.client_ca)
        return context

    async def start(self) -> None:
        """Listen (on a free port when `port` is 0; `port` then holds it)."""
        self._server = await asyncio.start_server(
            self._relay, self.host, self.port, ssl=self._context(), ssl_handshake_timeout=10
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(_pipe(client_reader, up_writer), _pipe(up_reader, client_writer))
        except asyncio.CancelledError:
            pass  # stop(): the connection is cut; returning keeps asyncio's server callback quiet
        finally:
            for writer in (client_writer, up_writer):
                writer.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


@dataclass
class TlsBroker:
    """A private Tansu reachable only through TLS at `bootstrap` (its certificate: `server_names`)."""

    ca: CertificateAuthority
    ca_file: Path
    folder: Path
    proxy: TlsProxy
    plain_port: int

    @property
    def bootstrap(self) -> str:
        """host:port of the TLS listener (the address the broker also advertises)."""
        return f"{self.proxy.host}:{self.proxy.port}"

    @asynccontextmanager
    async def proxy_with(
        self, certfile: Path, keyfile: Path, *, client_ca: Path | None = None
    ) -> AsyncIterator[TlsProxy]:
        """Another TLS listener in front of the same broker, with another certificate (or mutual TLS).
        The broker still advertises the main listener, so only bootstrapping goes through this one."""
        proxy = TlsProxy(certfile, keyfile, ("127.0.0.1", self.plain_port), client_ca=client_ca)
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.stop()


def _exited(process: subprocess.Popen[bytes], log: Path) -> RuntimeError:
    return RuntimeError(f"private Tansu exited ({process.returncode}): {log.read_text()[-2000:]}")


def _start_tansu(folder: Path, plain_port: int, advertised_port: int) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    argv = [
        str(tansu_binary(folder / "bin")),
        "broker",
        "--cluster-id",
        "cairn-tls-test",
        "--listener-url",
        f"tcp://127.0.0.1:{plain_port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{advertised_port}",
        "--storage-engine",
        "memory://tansu/",
    ]
    log = folder / "tansu.log"
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT), log


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _server_files(folder: Path, server_names: Sequence[str]) -> tuple[CertificateAuthority, Path, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority("cairn-test-kafka-ca")
    certfile, keyfile = ca.issue(folder, "broker", list(server_names))
    return ca, ca.write(folder / "ca.pem"), certfile, keyfile


async def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if process.poll() is not None:
            raise _exited(process, log)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"private Tansu did not listen on {port} within {timeout_s} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


@asynccontextmanager
async def tls_broker(
    folder: Path, server_names: Sequence[str] = ("localhost", "127.0.0.1"), *, client_ca: Path | None = None
) -> AsyncIterator[TlsBroker]:
    """Start a private Tansu (memory storage) and a TLS proxy in front of it on 127.0.0.1, with a new
    CA (written to `folder/ca.pem`) and a server certificate for `server_names`; stops both on exit.
    With `client_ca`, the TLS listener requires client certificates signed by it."""
    ca, ca_file, certfile, keyfile = _server_files(folder, server_names)
    plain_port, tls_port = free_port(), free_port()
    proxy = TlsProxy(certfile, keyfile, ("127.0.0.1", plain_port), port=tls_port, client_ca=client_ca)
    await proxy.start()
    try:
        process, log = _start_tansu(folder, plain_port, proxy.port)
    except BaseException:
        await proxy.stop()
        raise
    try:
        await _wait_listening(plain_port, process, log, 30.0)
        yield TlsBroker(ca, ca_file, folder, proxy, plain_port)
    finally:
        await proxy.stop()
        _stop(process)
