"""The aggregator makes the folder of its SQLite file, or says which folder it cannot make."""

from pathlib import Path

import pytest

from aggregator.database import DatabaseUrlError, make_sqlite_dir


def test_the_folder_of_a_sqlite_file_is_made(tmp_path: Path) -> None:
    db = tmp_path / "var" / "lib" / "stockwire" / "ledger.db"
    make_sqlite_dir(f"sqlite+aiosqlite:///{db}")
    assert db.parent.is_dir()
    assert not db.exists()  # SQLite makes the file itself


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(DatabaseUrlError, match=r"cannot create .*not-a-folder/sub"):
        make_sqlite_dir(f"sqlite+aiosqlite:///{blocker}/sub/ledger.db")


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://u@127.0.0.1:1/db"]
)
def test_nothing_to_make_for_memory_or_a_server(url: str) -> None:
    make_sqlite_dir(url)
