"""TLS to a real mosquitto: a CA made here signs the broker's certificate for 127.0.0.1."""

import datetime as dt
import gc
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aggregator.roles import Role
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.settings import EdgeSettings
from simulators.mosquitto import TlsFiles
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    running_aggregator,
    wait_for,
)
from tests.integration.edge_support import draft, running, wait_until
from tests.integration.secured_support import Secured, start_secured

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    server: TlsFiles


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def make_pki(folder: Path) -> Pki:
    """A throwaway CA and a server certificate for IP 127.0.0.1 signed by it (PEM files)."""
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = (
        _builder("stockwire test CA", "stockwire test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ip = x509.IPAddress(ipaddress.ip_address(LOOPBACK))
    server = (
        _builder("stockwire test broker", "stockwire test CA", server_key)
        .add_extension(x509.SubjectAlternativeName([ip]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = Pki(folder / "ca.crt", TlsFiles(folder / "server.crt", folder / "server.key"))
    files.ca_file.write_bytes(ca.public_bytes(pem))
    files.server.certfile.write_bytes(server.public_bytes(pem))
    files.server.keyfile.write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.server.keyfile.chmod(0o600)
    return files


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def tls_site(tmp_path: Path, pki: Pki) -> Iterator[Secured]:
    site = start_secured(tmp_path, tls=pki.server)
    try:
        yield site
    finally:
        site.broker.kill()


def edge_settings(site: Secured, tmp_path: Path, **tls: object) -> EdgeSettings:
    return EdgeSettings(
        site=SITE,
        edge=EDGE,
        mqtt={**site.mqtt(EDGE), "port": site.broker.tls_port, **tls},
        outbox={"path": tmp_path / "outbox.sqlite"},
        publisher={"reconnect_min_s": 0.05, "reconnect_max_s": 0.2},
    )


async def test_edge_and_aggregator_round_trip_a_transaction_over_tls(
    tls_site: Secured, pki: Pki, tmp_path: Path
) -> None:
    aggregator = tls_site.aggregator(
        tmp_path, port=tls_site.broker.tls_port, tls=True, ca_file=pki.ca_file
    )
    edge = edge_settings(tls_site, tmp_path, tls=True, ca_file=pki.ca_file)
    outbox = await Outbox.open(edge.outbox.path, EDGE, 100)
    publisher = Publisher(edge, outbox)
    try:
        async with running_aggregator(aggregator) as url, running(publisher.run()):
            (txn,) = await outbox.add([draft("S1")])
            publisher.wake()
            await wait_until(lambda: outbox.count() == 0, "the ack over TLS")
            viewer = api_key(aggregator.database_url, Role.VIEWER)
            async with api_client(url, viewer) as http:
                assert (await http.get(f"/transactions/{txn.id}")).status_code == 200

                async def probed() -> bool:
                    return (await http.get("/health")).json()["mqtt_anonymous"] is not None

                await wait_for(probed, "the anonymous probe over TLS")
                assert (await http.get("/health")).json()["mqtt_anonymous"] is False
            publisher.request_stop()
    finally:
        await outbox.close()


# paho 2.2 leaves the socket of a failed TLS handshake for the garbage collector to close
# (client.py _ssl_wrap_socket): collect it here, where its ResourceWarning is expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_edge_that_does_not_trust_the_ca_says_why_it_cannot_connect(
    tls_site: Secured, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edge = edge_settings(tls_site, tmp_path, tls=True)  # no ca_file: the system's CAs
    outbox = await Outbox.open(edge.outbox.path, EDGE, 100)
    publisher = Publisher(edge, outbox)
    try:
        with caplog.at_level(logging.WARNING, logger="edge_agent"):
            async with running(publisher.run()):
                await wait_until(lambda: publisher.stats.connect_failures >= 2, "refused twice")
                publisher.request_stop()
    finally:
        await outbox.close()
    assert publisher.stats.connects == 0
    failures = [m for m in caplog.messages if "CERTIFICATE_VERIFY_FAILED" in m]
    assert failures, caplog.text
    assert f"mqtt {LOOPBACK}:{tls_site.broker.tls_port}" in failures[0]
    caplog.clear()  # its records hold the errors, whose tracebacks hold the sockets
    gc.collect()
