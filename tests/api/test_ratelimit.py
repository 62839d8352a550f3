"""Rate limits per key and per widget visitor: 429 problems with ``Retry-After`` from a real
server, and the counters in Redis (shared by replicas, behind a password, failing open)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.api.ratelimit import RateLimiter, limits_storage_uri
from assistant.errors import RateLimitedError
from tests.api.conftest import ApiServer
from tests.api.test_auth import assert_problem
from tests.support.servers import free_loopback_port, start_redis, stop

SHOP = "https://shop.example.com"


def test_a_key_over_its_requests_per_minute_gets_429_with_retry_after(
    api_server: ApiServer,
) -> None:
    name = api_server.create_assistant(limits={"requests_per_minute": 2})
    secret = api_server.create_key(name, "secret")
    with api_server.client(secret) as client:
        assert client.get(f"/api/assistants/{name}").status_code == 200
        assert client.get(f"/api/assistants/{name}/widget").status_code == 200
        refused = client.get(f"/api/assistants/{name}")
    assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another key of the same assistant has its own budget; the admin has none.
    with api_server.client(api_server.create_key(name, "secret")) as client:
        assert client.get(f"/api/assistants/{name}").status_code == 200
    with api_server.admin() as admin:
        for _ in range(3):
            assert admin.get(f"/api/assistants/{name}").status_code == 200
        metrics = admin.get("/metrics").text
    assert 'assistant_rate_limited_requests_total{scope="key"} 1.0' in metrics


def test_widget_visitors_are_limited_one_by_one(api_server: ApiServer) -> None:
    name = api_server.create_assistant(
        allowed_origins=[SHOP], limits={"visitor_requests_per_minute": 1}
    )
    public = api_server.create_key(name, "public")
    with api_server.client(public, Origin=SHOP) as client:
        path = f"/api/assistants/{name}/widget"
        # Visitors are named by the tokens the server signs (X-Visitor-Id is the client's).
        anna = {"X-Visitor-Token": api_server.visitor_token(name)}
        ben = {"X-Visitor-Token": api_server.visitor_token(name)}
        assert client.get(path, headers=anna).status_code == 200
        refused = client.get(path, headers=anna)
        assert_problem(refused, 429, "rate_limited")
        # The widget can read the refusal and when to retry.
        assert refused.headers["access-control-allow-origin"] == SHOP
        assert "Retry-After" in refused.headers["access-control-expose-headers"]
        assert client.get(path, headers=ben).status_code == 200


def test_the_key_budget_is_the_sum_of_its_visitors(api_server: ApiServer) -> None:
    name = api_server.create_assistant(
        allowed_origins=[SHOP],
        limits={"requests_per_minute": 2, "visitor_requests_per_minute": 5},
    )
    public = api_server.create_key(name, "public")
    with api_server.client(public, Origin=SHOP) as client:
        path = f"/api/assistants/{name}/widget"
        anna, ben, carl = ({"X-Visitor-Token": api_server.visitor_token(name)} for _ in range(3))
        for visitor in (anna, ben):
            assert client.get(path, headers=visitor).status_code == 200
        assert_problem(client.get(path, headers=carl), 429, "rate_limited")


def test_storage_uris_keep_the_password() -> None:
    assert (
        limits_storage_uri("redis://:p%40ss@cache:6379/2") == "async+redis://:p%40ss@cache:6379/2"
    )
    assert limits_storage_uri("rediss://user:pw@cache/0") == "async+rediss://user:pw@cache/0"
    assert limits_storage_uri("unix:///run/redis.sock") == "async+redis+unix:///run/redis.sock"
    with pytest.raises(ValueError, match="redis://"):
        limits_storage_uri("http://cache:6379")


async def test_counters_in_memory_refuse_over_the_limit() -> None:
    limiter = RateLimiter()
    assert not limiter.uses_redis and await limiter.ping()
    await limiter.hit("key", ("a/b",), per_minute=1)
    await limiter.hit("key", ("a", "b"), per_minute=1)  # no identity spells another
    with pytest.raises(RateLimitedError) as refused:
        await limiter.hit("key", ("a/b",), per_minute=1)
    assert 0 < refused.value.retry_after <= 60
    await limiter.aclose()


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[str]:
    """A password-protected Redis on loopback: its URL, password included."""
    port = free_loopback_port()
    process = start_redis(port, tmp_path / "redis.log", password="s3cret/+pw")
    try:
        yield f"redis://:s3cret%2F%2Bpw@127.0.0.1:{port}/0"
    finally:
        stop(process)


@pytest.mark.integration
async def test_replicas_share_counters_in_redis(redis_with_password: str) -> None:
    first, second = RateLimiter(redis_with_password), RateLimiter(redis_with_password)
    try:
        assert first.uses_redis and await first.ping()
        await first.hit("key", ("shared",), per_minute=2)
        await second.hit("key", ("shared",), per_minute=2)
        with pytest.raises(RateLimitedError):
            await first.hit("key", ("shared",), per_minute=2)
        with pytest.raises(RateLimitedError):
            await second.hit("key", ("shared",), per_minute=2)
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.integration
async def test_a_failing_redis_counts_in_the_process_instead(
    redis_with_password: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = redis_with_password.replace("s3cret", "wrong")
    for url in (wrong, f"redis://127.0.0.1:{free_loopback_port()}/0"):
        limiter = RateLimiter(url)
        caplog.clear()
        try:
            assert not await limiter.ping()
            with caplog.at_level(logging.WARNING, logger="assistant.api.ratelimit"):
                await limiter.hit("key", ("any",), per_minute=2)
                await limiter.hit("key", ("any",), per_minute=2)
                # Never no limit: the third request in the minute is refused.
                with pytest.raises(RateLimitedError) as refused:
                    await limiter.hit("key", ("any",), per_minute=2)
                await limiter.hit("key", ("other",), per_minute=2)
        finally:
            await limiter.aclose()
        assert refused.value.retry_after is not None and refused.value.retry_after >= 1.0
        warnings = [r for r in caplog.records if "counting in this process" in r.getMessage()]
        assert len(warnings) == 1  # once per outage, not once per request
