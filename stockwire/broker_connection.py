"""How the edge and the aggregator reach the broker and log in: the `[mqtt]` section they share.

With credentials set, the client id defaults to the username. The brokers in deploy/mosquitto
set `use_username_as_clientid`, so there the username *is* the client id whatever a client
sends: an explicit `client_id` that differs is ignored by such a broker (and used as is by one
without that setting). Each login therefore belongs to one running client; replicas of the
aggregator need one user each.
"""

import ssl
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, model_validator


class BrokerConnection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    tls: bool = False
    # The CA that signed the broker's certificate; None: the system's trusted CAs.
    ca_file: FilePath | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # None: the username, or a name made from the site (and edge) without credentials.
    client_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> Self:
        if self.ca_file is not None and not self.tls:
            raise ValueError(f"ca_file {self.ca_file} is set but tls is false: set tls = true")
        return self

    def password_text(self) -> str | None:
        return None if self.password is None else self.password.get_secret_value()

    def client_id_or(self, fallback: str) -> str:
        return self.client_id or self.username or fallback

    def tls_context(self) -> ssl.SSLContext | None:
        """Verifies the broker's certificate and host name (a SAN entry) against ca_file."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.ca_file)
