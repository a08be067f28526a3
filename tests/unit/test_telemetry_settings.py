"""The sink's settings: off by default (nothing of influxdb-client loaded), token from the
environment and never shown."""

import subprocess
import sys

import pytest

from aggregator.settings import AggregatorSettings
from stockwire.config import load_settings


def test_the_sink_is_off_by_default_and_then_influxdb_client_is_not_even_imported() -> None:
    code = (
        "import sys\n"
        "from aggregator.service import _sink\n"
        "from aggregator.settings import TelemetrySinkSettings\n"
        "assert _sink(TelemetrySinkSettings()) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('influxdb_client')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_token_comes_from_the_environment_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOCKWIRE_AGG_TELEMETRY__URL", "http://tsdb:8086")
    monkeypatch.setenv("STOCKWIRE_AGG_TELEMETRY__TOKEN", "s3cr3t-token")
    settings = load_settings(AggregatorSettings, None, site="s1")
    assert settings.telemetry.url == "http://tsdb:8086"
    assert settings.telemetry.token_text() == "s3cr3t-token"
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in settings.model_dump_json()
