"""The key that signs visitor tokens when ASSISTANT_SECRET_KEY is unset: generated once and
kept in the database, and when two replicas store one at the same moment, the loser uses the
winner's (its first widget request used to fail with 503 ``database_unavailable``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert

from assistant.api.visitors import load_secret
from assistant.database.engine import Database
from assistant.database.models import ServerSecretRow
from tests.support.settings import vendor_settings

WINNER = "w" * 64


def test_a_replica_that_loses_the_race_to_store_the_key_uses_the_winners(
    database_url: str,
) -> None:
    database = Database.open(database_url)
    raced: list[str] = []

    def another_replica_stores_first(
        connection: Any, cursor: Any, statement: str, *args: Any
    ) -> None:
        # Between this replica's read (no key yet) and its insert, another one stores its key.
        if statement.lstrip().upper().startswith("INSERT INTO SERVER_SECRETS") and not raced:
            raced.append(statement)
            with database.engine.connect() as other:
                other.execute(
                    insert(ServerSecretRow).values(name="visitor-token-key", value=WINNER)
                )
                other.commit()

    event.listen(database.engine, "before_cursor_execute", another_replica_stores_first)
    try:
        secret = load_secret(vendor_settings(), database)
    finally:
        event.remove(database.engine, "before_cursor_execute", another_replica_stores_first)
        database.close()
    assert raced, "the race was not staged"
    assert secret == WINNER.encode("ascii")
