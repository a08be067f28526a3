"""`stockwire broker conf|acl|passwd` and the files in deploy/mosquitto made with them."""

import base64
import hashlib
import io
import stat
import tomllib
from pathlib import Path

import pytest

from stockwire import broker_config, cli, passwd

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "mosquitto"
EXAMPLE_SITE = tomllib.loads((ROOT / "deploy/config/edge.example.toml").read_text())["site"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["broker", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def check(password: str, hashed: str) -> bool:
    """What mosquitto does with a `$7$` line: PBKDF2-HMAC-SHA512 over the stored salt."""
    _, kind, iterations, salt, digest = hashed.split("$")
    again = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(iterations)
    )
    return kind == "7" and base64.b64encode(again).decode() == digest


def test_deploy_files_are_what_the_generator_makes(capsys: pytest.CaptureFixture[str]) -> None:
    """Edit the generator and regenerate: `stockwire broker conf > deploy/mosquitto/...`."""
    assert run(capsys, "conf") == (0, (DEPLOY / "mosquitto.conf").read_text(), "")
    acl = run(capsys, "acl", "--site", EXAMPLE_SITE)
    assert acl == (0, (DEPLOY / "stockwire.acl").read_text(), "")


def test_the_conf_refuses_strangers_and_pins_client_ids() -> None:
    lines = broker_config.conf_text().splitlines()
    for line in ("allow_anonymous false", "use_username_as_clientid true", "listener 8883"):
        assert line in lines
    assert "password_file /etc/mosquitto/passwd" in lines
    assert "acl_file /etc/mosquitto/stockwire.acl" in lines


def test_the_acl_is_pinned_to_its_site() -> None:
    text = broker_config.acl_text("north", ["agg-1", "agg-2"], ["grafana"])
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert "pattern write stockwire/v1/north/%u/txn" in rules
    assert "pattern read stockwire/v1/north/%u/ack" in rules
    assert not [r for r in rules if r.startswith("pattern") and "/north/%u/" not in r]
    assert not [r for r in rules if "stockwire/v1/+/" in r]  # no rule spans sites
    assert not [r for r in rules if r.startswith("pattern") and "ack" in r and "write" in r]
    assert rules.count("topic write stockwire/v1/north/+/ack") == 2  # each aggregator replica
    grafana = rules[rules.index("user grafana") + 1 :]
    assert grafana
    assert all(r.startswith("topic read ") for r in grafana)


def test_acl_refuses_names_that_are_not_topic_levels(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "acl", "--site", "a/b")
    assert (code, out) == (2, "")
    assert "site 'a/b' is not a valid topic level" in err
    code, _, err = run(capsys, "acl", "--site", "s", "--aggregator", "agg+1")
    assert code == 2
    assert "agg+1" in err


def test_passwd_adds_and_replaces_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "passwd"
    code, first, _ = run(capsys, "passwd", str(path), "dock-1")
    assert code == 0
    first = first.strip()
    assert len(first) >= 24  # printed once, to go into the edge's env file
    monkeypatch.setattr("sys.stdin", io.StringIO("chosen secret\n"))
    assert run(capsys, "passwd", str(path), "aggregator", "--password-stdin") == (0, "", "")
    code, second, _ = run(capsys, "passwd", str(path), "dock-1")
    lines = dict(line.split(":", 1) for line in path.read_text().splitlines())
    assert list(lines) == ["dock-1", "aggregator"]  # replaced in place
    assert check(second.strip(), lines["dock-1"])
    assert not check(first, lines["dock-1"])
    assert check("chosen secret", lines["aggregator"])
    assert lines["dock-1"].startswith(f"$7${passwd.ITERATIONS}$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_passwd_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("# site logins\nother:$7$101$x$y\n")
    path.chmod(0o640)
    passwd.set_password(path, "dock-1", "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text().splitlines()[:2] == ["# site logins", "other:$7$101$x$y"]


def test_passwd_refuses_bad_usernames_and_empty_passwords(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "passwd"
    code, out, err = run(capsys, "passwd", str(path), "dock 1")
    assert (code, out) == (2, "")
    assert "username 'dock 1'" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    code, _, err = run(capsys, "passwd", str(path), "dock-1", "--password-stdin")
    assert code == 2
    assert "password of 'dock-1' is empty" in err
    assert not path.exists()
