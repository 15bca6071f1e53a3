from __future__ import annotations

import time

import pytest

from alice_voice.state.store import MemoryStore, SessionRecord, hash_token, token_matches


def record(session_id: str = "s1") -> SessionRecord:
    now = time.time()
    return SessionRecord(session_id=session_id, owner="p1", mode="tone", created_at=now, updated_at=now,
                         token_hash=hash_token("tok"))


def test_tokens_are_kept_as_digests_and_compared() -> None:
    digest = hash_token("tok")
    assert digest != "tok" and len(digest) == 64
    assert token_matches("tok", digest) and not token_matches("other", digest)
    assert "token_hash" not in record().public()


@pytest.mark.asyncio
async def test_create_get_update_delete() -> None:
    store = MemoryStore()
    await store.create(record(), ttl_s=10)
    got = await store.get("s1")
    assert got is not None and got.owner == "p1"
    await store.update(got.model_copy(update={"turn_count": 2}), ttl_s=10)
    again = await store.get("s1")
    assert again is not None and again.turn_count == 2
    assert await store.delete("s1") is True
    assert await store.delete("s1") is False
    assert await store.get("s1") is None


@pytest.mark.asyncio
async def test_records_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    await store.create(record(), ttl_s=5)
    ttl = await store.ttl_s("s1")
    assert ttl is not None and ttl == pytest.approx(5)
    clock[0] += 5.01
    assert await store.get("s1") is None and len(store) == 0
