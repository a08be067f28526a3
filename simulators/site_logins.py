"""MQTT logins for a simulated site: a random password per edge, the aggregator and a viewer,
with mosquitto's password file and the site's ACL, written into one folder (the demo's)."""

from dataclasses import dataclass
from pathlib import Path

from simulators.mosquitto import Auth
from stockwire import broker_config, passwd


@dataclass(frozen=True, slots=True)
class SiteLogins:
    passwords: dict[str, str]  # username -> password
    auth: Auth
    list_file: Path  # "username password" lines, for a person trying mosquitto_sub

    def password(self, username: str) -> str:
        return self.passwords[username]


def make_logins(folder: Path, site: str, edges: list[str]) -> SiteLogins:
    aggregator, viewer = broker_config.AGGREGATOR_USER, broker_config.VIEWER_USER
    folder.mkdir(parents=True, exist_ok=True)
    passwords = {name: passwd.new_password() for name in [*edges, aggregator, viewer]}
    auth = Auth(folder / broker_config.PASSWD_FILE, folder / broker_config.ACL_FILE)
    for username, password in passwords.items():
        passwd.set_password(auth.password_file, username, password)
    auth.acl_file.write_text(broker_config.acl_text(site, [aggregator], [viewer]))
    list_file = folder / "logins.txt"
    list_file.touch(mode=0o600)
    list_file.write_text("".join(f"{user} {pw}\n" for user, pw in passwords.items()))
    return SiteLogins(passwords, auth, list_file)
