from pathlib import Path

from stockwire import schema


def test_committed_schemas_match_the_models() -> None:
    expected = schema.rendered()
    committed = {p.name: p.read_text(encoding="utf-8") for p in schema.SCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(expected), "run `make schema` and commit stockwire/schemas/"
    for name, text in expected.items():
        assert committed[name] == text, f"{name} drifted: run `make schema` and commit"


def test_asyncapi_names_every_channel_and_message(tmp_path: Path) -> None:
    doc = schema.asyncapi()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "stockwire/v1/{site}/{edge}/txn" in addresses
    assert "stockwire/v1/{site}/ledger" in addresses
    assert set(doc["components"]["messages"]) == set(schema.MESSAGES)
    written = {p.name for p in schema.write(tmp_path)}
    assert written == set(schema.rendered())
