"""A real mosquitto set up as deploy/mosquitto is: a login per client (our password file), the
site's ACL from stockwire.broker_config, username = client id; optionally a TLS listener."""

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from aggregator.settings import AggregatorSettings
from simulators.mosquitto import Mosquitto, TlsFiles
from simulators.site_logins import SiteLogins, make_logins
from stockwire import passwd
from stockwire.broker_config import AGGREGATOR_USER
from tests.integration.aggregator_support import EDGE, SITE

EDGE_B = "edge2"
# A test-only login that may read every topic: it shows what the broker let through.
SPY = "spy"


@dataclass
class Secured:
    broker: Mosquitto
    logins: SiteLogins

    def client(
        self,
        username: str | None,
        *,
        password: str | None = None,
        identifier: str | None = None,
        clean_session: bool | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> aiomqtt.Client:
        """A client logged in as `username` (with its own password unless one is given)."""
        if password is None and username is not None:
            password = self.logins.password(username)
        port = self.broker.port if tls_context is None else self.broker.tls_port
        assert port is not None, "this broker has no TLS listener"
        return aiomqtt.Client(
            self.broker.host,
            port,
            username=username,
            password=password,
            identifier=identifier,
            clean_session=clean_session,
            tls_context=tls_context,
            timeout=10,
        )

    def mqtt(self, username: str, **extra: Any) -> dict[str, Any]:
        """An [mqtt] settings section that logs in as `username`."""
        login = {"username": username, "password": self.logins.password(username)}
        return {"host": self.broker.host, "port": self.broker.port, **login, **extra}

    def aggregator(self, tmp_path: Path, **mqtt: Any) -> AggregatorSettings:
        return AggregatorSettings(
            site=SITE,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
            mqtt=self.mqtt(AGGREGATOR_USER, **mqtt),
            known_edges=[EDGE, EDGE_B],
            api={"port": 0},
        )


def start_secured(workdir: Path, tls: TlsFiles | None = None) -> Secured:
    logins = make_logins(workdir / "mqtt", SITE, [EDGE, EDGE_B])
    logins.passwords[SPY] = passwd.new_password()
    passwd.set_password(logins.auth.password_file, SPY, logins.passwords[SPY])
    with logins.auth.acl_file.open("a") as acl:
        acl.write(f"\nuser {SPY}\ntopic read #\n")
    return Secured(Mosquitto(workdir / "mosquitto", auth=logins.auth, tls=tls).start(), logins)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    site = start_secured(tmp_path)
    try:
        yield site
    finally:
        site.broker.kill()
