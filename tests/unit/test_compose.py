"""deploy/compose.yml validates (`docker compose config`, or Debian's docker-compose) and fits the
repository: the files it mounts exist (or are the ones the README has people make, kept out of
git), every STOCKWIRE_* variable names a real setting, the programs load with that environment,
the sim edge reads exactly the simulated devices of its scenario, and Grafana gets the
provisioning and the variables it reads. No container runs here (there is no registry)."""

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from aggregator.settings import AggregatorSettings
from edge_agent.registry import build_device
from edge_agent.settings import EdgeSettings
from simulators.scenario import load as load_scenario
from simulators.shelf.edge_lanes import lane_configs
from stockwire.cli import _parser as cli_parser
from stockwire.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
CORE = {"mosquitto", "postgres", "influxdb", "grafana", "aggregator"}
SIM = {"edge", "sim-scan-dock", "sim-scan-a", "sim-scan-b", "sim-llrp", "sim-shelf"}
# Mounted, and made on the deployment host by the README's steps: never in git.
HOST_MADE = {"deploy/mosquitto/passwd"} | {
    f"deploy/mosquitto/certs/{name}" for name in ("ca.crt", "server.crt", "server.key")
}
IMAGE_ROOT = "/opt/stockwire"  # deploy/Dockerfile's WORKDIR for the sources


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return None if legacy is None else [legacy]


def uncommented(path: Path) -> str:
    return "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    )


def example_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2 and not p[0].startswith("#")}


def run_config(command: list[str], env_file: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG")}
    args = ["-f", str(COMPOSE), "--env-file", str(env_file), "--profile", "sim", "config"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=clean, check=False, timeout=60
    )


@pytest.fixture(scope="module")
def command() -> list[str]:
    found = compose_command()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must validate deploy/compose.yml: .ci/run installs docker-compose")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    return found


@pytest.fixture(scope="module")
def resolved(command: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as compose resolves it, with the example env and each secret filled."""
    env = {k: v or f"test{k.lower().replace('_', '')}" for k, v in example_env().items()}
    env_file = tmp_path_factory.mktemp("compose") / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    done = run_config(command, env_file)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def service(resolved: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = resolved["services"][name]
    return found


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):  # KEY=VALUE items
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def binds(svc: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (short or long syntax)."""
    found = {}
    for volume in svc.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if source.startswith("/"):
                found[target] = Path(source)
        elif volume.get("type") == "bind":
            found[volume["target"]] = Path(volume["source"])
    return found


# ---- compose itself -------------------------------------------------------------------------


def test_compose_validates_with_the_example_env(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == CORE | SIM
    for name in CORE:
        assert not service(resolved, name).get("profiles"), name
    for name in SIM:
        assert service(resolved, name)["profiles"] == ["sim"], name


def test_a_secret_left_empty_stops_compose(command: list[str], tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    shutil.copy(ENV_EXAMPLE, env_file)
    done = run_config(command, env_file)
    assert done.returncode != 0
    assert re.search(r"set [A-Z_]+ in deploy/\.env", done.stderr), done.stderr


def test_the_example_env_has_every_variable_and_no_secret() -> None:
    text = uncommented(COMPOSE)
    used = set(re.findall(r"\$\{(\w+)", text))
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = example_env()
    assert used <= set(example), used - set(example)
    assert required, "no secret is required?"
    assert {k for k in required if example[k]} == set()  # nothing to deploy by mistake
    secrets = {k for k in example if k.endswith(("PASSWORD", "TOKEN"))}
    assert secrets <= required, secrets - required


def test_services_wait_for_healthy_dependencies(resolved: dict[str, Any]) -> None:
    for name in CORE:
        assert service(resolved, name)["healthcheck"]["test"], name
    for name, svc in resolved["services"].items():
        for dependency, condition in svc.get("depends_on", {}).items():
            healthcheck = "healthcheck" in service(resolved, dependency)
            expected = "service_healthy" if healthcheck else "service_started"
            assert condition["condition"] == expected, (name, dependency)


def test_bind_mounts_are_in_the_repository_or_made_on_the_host(resolved: dict[str, Any]) -> None:
    mounted = {p for svc in resolved["services"].values() for p in binds(svc).values()}
    assert mounted
    for path in mounted:
        relative = path.relative_to(ROOT).as_posix()
        if relative in HOST_MADE:
            ignored = subprocess.run(["git", "check-ignore", "-q", relative], cwd=ROOT, check=False)
            assert ignored.returncode == 0, f"{relative} is made on the host: keep it out of git"
        else:
            assert path.exists(), relative


def test_the_made_files_are_the_ones_the_readme_makes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Deployment with compose", 1)[1].split("\n## ", 1)[0]
    for path in ("deploy/mosquitto/passwd", "deploy/mosquitto/certs", "deploy/.env"):
        assert path in section, path


# ---- the programs in it ---------------------------------------------------------------------


def _setting(model: type[BaseModel], parts: list[str]) -> bool:
    """Whether the nested field path names a setting of `model`."""
    field = model.model_fields.get(parts[0])
    if field is None:
        return False
    if len(parts) == 1:
        return True
    annotation = field.annotation
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and _setting(annotation, parts[1:])
    )


def _paths(env: dict[str, str], prefix: str) -> dict[str, list[str]]:
    return {k: k[len(prefix) :].lower().split("__") for k in env if k.startswith(prefix)}


def test_a_misspelt_variable_names_no_setting() -> None:
    assert _setting(AggregatorSettings, ["mqtt", "ca_file"])
    assert not _setting(AggregatorSettings, ["mqtt", "cafile"])
    assert not _setting(AggregatorSettings, ["site", "name"])  # site is no section
    assert not _setting(AggregatorSettings, ["mqtt_host"])


def test_every_aggregator_variable_names_a_setting(resolved: dict[str, Any]) -> None:
    paths = _paths(environment(service(resolved, "aggregator")), "STOCKWIRE_AGG_")
    assert len(paths) >= 5
    if "telemetry" not in AggregatorSettings.model_fields:
        paths = {k: p for k, p in paths.items() if p[0] != "telemetry"}  # the test below says
    wrong = [name for name, parts in paths.items() if not _setting(AggregatorSettings, parts)]
    assert wrong == []


def test_the_telemetry_variables_name_the_sink_settings(resolved: dict[str, Any]) -> None:
    if "telemetry" not in AggregatorSettings.model_fields:
        pytest.skip("aggregator.settings has no telemetry section yet (branch telemetry-sink)")
    paths = _paths(environment(service(resolved, "aggregator")), "STOCKWIRE_AGG_TELEMETRY__")
    assert sorted(paths) == [
        f"STOCKWIRE_AGG_TELEMETRY__{k}" for k in ("BUCKET", "ORG", "TOKEN", "URL")
    ]
    for parts in paths.values():
        assert _setting(AggregatorSettings, ["telemetry", *parts]), parts


def _set_env(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], prefix: str, ca_file: Path
) -> None:
    for name in list(os.environ):
        if name.startswith(prefix):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The CA is a container path here: stand in a local file for it.
    ca_file.write_text("a CA certificate\n")
    monkeypatch.setenv(f"{prefix}MQTT__CA_FILE", str(ca_file))


def test_the_aggregator_loads_with_the_compose_environment(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if "telemetry" not in AggregatorSettings.model_fields:
        pytest.skip("aggregator.settings has no telemetry section yet (branch telemetry-sink)")
    svc = service(resolved, "aggregator")
    _set_env(monkeypatch, environment(svc), "STOCKWIRE_AGG_", tmp_path / "ca.crt")
    settings = load_settings(AggregatorSettings, binds(svc)["/etc/stockwire/aggregator.toml"])
    assert settings.database_url.startswith("postgresql+asyncpg://stockwire:")
    assert settings.database_url.endswith("@postgres:5432/stockwire")
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("mosquitto", 8883, True)
    assert settings.mqtt.password is not None
    assert settings.api.host == "0.0.0.0"  # inside its container
    assert settings.known_edges == ["dock-1"]  # the sim edge


def test_the_sim_edge_reads_the_sim_services_of_its_scenario(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    svc = service(resolved, "edge")
    _set_env(monkeypatch, environment(svc), "STOCKWIRE_EDGE_", tmp_path / "ca.crt")
    settings = load_settings(EdgeSettings, binds(svc)["/etc/stockwire/edge.toml"])
    assert (settings.site, settings.edge, settings.mqtt.host) == (
        "main-warehouse",
        "dock-1",
        "mosquitto",
    )
    assert settings.mqtt.password is not None
    assert settings.outbox.path.parent == Path("/var/lib/stockwire")  # the edge-data volume

    scenarios = set()
    served = {}  # device id in the scenario -> "service:port"
    for name in SIM - {"edge"}:
        args = cli_parser().parse_args(service(resolved, name)["command"])
        scenarios.add(str(args.scenario))
        if args.device == "scanner":
            actor, port = args.scanner, args.tcp.rsplit(":", 1)[1]
        elif args.device == "llrp":
            actor, port = args.portal, args.port
        else:
            actor, port = args.shelf, args.tcp
        served[actor] = f"{name}:{port}"
    (scenario_path,) = scenarios
    scenario = load_scenario(ROOT / Path(scenario_path).relative_to(IMAGE_ROOT))

    actors = [a.id for a in scenario.scanners] + [a.id for a in scenario.portals]
    actors += [a.id for a in scenario.shelves]
    assert {d.id: d.tcp for d in settings.devices} == {a: served[a] for a in actors}
    for device in settings.devices:
        build_device(device, lambda: datetime.now(UTC))  # profiles and layouts fit together
    (shelf,) = [d for d in settings.devices if d.shelf is not None]
    assert shelf.lanes == lane_configs(scenario, shelf.id)


def test_every_stockwire_command_parses() -> None:
    text = yaml.safe_load(COMPOSE.read_text())
    commands = [
        svc["command"]
        for svc in text["services"].values()
        if str(svc.get("image", "")).startswith("stockwire")
    ]
    assert len(commands) == len(SIM) + 1
    for argv in commands:
        cli_parser().parse_args(argv)  # exits (fails the test) on a bad option


# ---- the broker and Grafana ----------------------------------------------------------------


def test_mosquitto_gets_every_file_its_config_names(resolved: dict[str, Any]) -> None:
    svc = service(resolved, "mosquitto")
    conf = binds(svc)["/etc/mosquitto/mosquitto.conf"].read_text()
    named = re.findall(r"^(?:password_file|acl_file|certfile|keyfile) (\S+)", conf, re.MULTILINE)
    assert len(named) == 4
    script = " ".join(svc["command"])
    for path in named:
        assert path in binds(svc) or path in script or str(Path(path).parent) + "/" in script, path
    (port,) = re.findall(r"^listener (\d+)", conf, re.MULTILINE)
    assert f":{int(port):04X} " in " ".join(svc["healthcheck"]["test"])  # /proc/net/tcp is hex
    targets = [p["target"] if isinstance(p, dict) else p.rsplit(":", 1)[1] for p in svc["ports"]]
    assert int(port) in [int(t) for t in targets]  # published


def test_grafana_gets_its_provisioning_and_variables(resolved: dict[str, Any]) -> None:
    svc = service(resolved, "grafana")
    mounts = binds(svc)
    assert mounts["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/stockwire.yml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == DEPLOY / "grafana" / "dashboards"
    datasources = (DEPLOY / "grafana/provisioning/datasources").glob("*.yml")
    wanted = {v for f in datasources for v in re.findall(r"\$\{?(\w+)", uncommented(f))}
    assert wanted
    assert wanted <= set(environment(svc)), wanted - set(environment(svc))
    env = environment(svc)
    assert (
        env["INFLUX_TOKEN"]
        == environment(service(resolved, "influxdb"))["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    )


def test_the_image_has_every_package_and_no_secret() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert include is not None
    packages = [p.rstrip("*") for p in re.findall(r'"([^"]+)"', include.group(1))]
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, re.MULTILINE))
    assert set(packages) <= copied, set(packages) - copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"deploy/.env", "deploy/mosquitto/passwd", "deploy/mosquitto/certs"} <= set(ignored)
