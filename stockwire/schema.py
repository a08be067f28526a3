"""JSON Schema for every message and an AsyncAPI 3 document, generated from the models.

The generated files are committed under stockwire/schemas/; a test fails when they drift.
"""

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stockwire import __version__
from stockwire.ack import Ack
from stockwire.events import Alert, LedgerEvents
from stockwire.status import EdgeStatus
from stockwire.telemetry import TelemetryBatch
from stockwire.txn import TxnBatch

SCHEMA_DIR = Path(__file__).parent / "schemas"

# message name -> (model, topic, direction, qos, retained)
MESSAGES: dict[str, tuple[type[BaseModel], str, str, int, bool]] = {
    "TxnBatch": (TxnBatch, "stockwire/v1/{site}/{edge}/txn", "edge -> aggregator", 1, False),
    "Ack": (Ack, "stockwire/v1/{site}/{edge}/ack", "aggregator -> edge", 1, False),
    "TelemetryBatch": (
        TelemetryBatch,
        "stockwire/v1/{site}/{edge}/telemetry",
        "edge -> aggregator",
        0,
        False,
    ),
    "EdgeStatus": (EdgeStatus, "stockwire/v1/{site}/{edge}/status", "edge -> anyone", 1, True),
    "LedgerEvents": (LedgerEvents, "stockwire/v1/{site}/ledger", "aggregator -> anyone", 1, False),
    "Alert": (Alert, "stockwire/v1/{site}/alerts", "aggregator -> anyone", 1, False),
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: spec[0].model_json_schema() for name, spec in MESSAGES.items()}


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name, (_, address, direction, qos, retained) in MESSAGES.items():
        channel = name[0].lower() + name[1:]
        params = {
            p: {"description": f"{p} id"} for p in ("site", "edge") if "{" + p + "}" in address
        }
        channels[channel] = {
            "address": address,
            "parameters": params,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"mqtt": {"qos": qos, "retain": retained}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": direction,
            "bindings": {"mqtt": {"qos": qos, "retain": retained}},
        }
        messages[name] = {
            "name": name,
            "contentType": "application/json",
            "payload": {"$ref": f"{name}.schema.json"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Stockwire wire contract",
            "version": __version__,
            "description": "Edge agents publish stock transactions; the aggregator acks them, "
            "posts each exactly once to a double-entry ledger and republishes movements "
            "and alerts.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def rendered() -> dict[str, str]:
    """File name -> exact text, as committed."""
    files = {
        f"{name}.schema.json": json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }
    files["asyncapi.json"] = json.dumps(asyncapi(), indent=2, sort_keys=True) + "\n"
    return files


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
