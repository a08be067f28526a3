"""Run a real Mosquitto on a free loopback port with a temp config (tests, bench, demo).

The config keeps every queued message (`max_queued_messages 0`) so that loss seen in a test is
never an artefact of the broker, and persists sessions so a restart keeps them. By default it
lets anyone in; with `auth` it is configured as deploy/mosquitto is (logins, ACL, username as
client id), and with `tls` it also listens with TLS on `tls_port`.
"""

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from simulators.ports import free_port, wait_port
from stockwire.broker_config import auth_lines

HOST = "127.0.0.1"


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


@dataclass(frozen=True, slots=True)
class Auth:
    password_file: Path
    acl_file: Path


@dataclass(frozen=True, slots=True)
class TlsFiles:
    certfile: Path  # the server's certificate (for 127.0.0.1), then any intermediates
    keyfile: Path


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        auth: Auth | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto binary not found (apt-get install mosquitto)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.tls_port = free_port() if tls else None
        self.host = HOST
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        access = ["allow_anonymous true"]
        if auth is not None:
            # As root, mosquitto would switch to user "mosquitto", which cannot read a 0600
            # password file in a private temp dir: it runs as whoever starts it instead.
            me = pwd.getpwuid(os.geteuid()).pw_name
            access = [f"user {me}", *auth_lines(auth.password_file, auth.acl_file)]
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} {HOST}",
                    *_tls_listener(self.tls_port, tls),
                    *access,
                    "max_queued_messages 0",
                    "max_inflight_messages 0",
                    "message_size_limit 0",
                    "set_tcp_nodelay true",
                    "persistence true",
                    f"persistence_location {workdir}/",
                    "autosave_interval 1",
                    f"log_dest file {workdir}/mosquitto.log",
                    "log_type error",
                    "log_type warning",
                    "",
                ]
            )
        )

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen(  # noqa: S603 - our own binary and config
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            for port in (self.port, self.tls_port):
                if port is not None:
                    wait_port(HOST, port)
        except TimeoutError:
            self.kill()
            raise
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM): mosquitto writes its persistence file."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self._close_pipe()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_pipe()
        self.proc = None

    def _close_pipe(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()  # an unclosed pipe is a ResourceWarning (an error in tests)

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tls_listener(port: int | None, files: TlsFiles | None) -> list[str]:
    if port is None or files is None:
        return []
    return [f"listener {port} {HOST}", f"certfile {files.certfile}", f"keyfile {files.keyfile}"]
