"""The SSRF guard: refused addresses, allowances, and refusal at connect time.

Only loopback addresses are ever connected to; every other refusal is asserted through
``check_url``, which resolves and vets without sending a packet (IP literals resolve locally).
"""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest

from assistant.errors import BlockedURLError, FetchError
from connectors.base import FetchPolicy
from connectors.fetch import fetch
from connectors.netguard import (
    GuardedNetworkBackend,
    check_url,
    guarded_client,
    is_refused_address,
)
from tests.connectors.site import LocalSite, site_fixture  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.integration

DEFAULT_POLICY = FetchPolicy(timeout_seconds=1.0)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/", "data:,hi"]
)
def test_check_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(BlockedURLError, match="only http and https"):
        check_url(url, DEFAULT_POLICY)


def test_check_url_refuses_a_url_without_host() -> None:
    with pytest.raises(FetchError, match="no host"):
        check_url("http:///path", DEFAULT_POLICY)


def test_public_addresses_pass_the_check() -> None:
    check_url("http://93.184.215.14/", DEFAULT_POLICY)
    check_url("https://[2606:4700:4700::1111]/", DEFAULT_POLICY)
    assert not is_refused_address(ipaddress.ip_address("8.8.8.8"))
    assert not is_refused_address(ipaddress.ip_address("::ffff:8.8.8.8"))


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "100.100.100.200", "::1", "fd00:ec2::254"],
)
def test_is_refused_address(address: str) -> None:
    assert is_refused_address(ipaddress.ip_address(address))


def test_allow_hosts_by_network_allows_addresses_inside_it_only() -> None:
    policy = FetchPolicy(allow_hosts=("10.0.0.0/8", "127.0.0.1"))
    check_url("http://10.20.30.40/", policy)
    check_url("http://127.0.0.1:8080/", policy)
    with pytest.raises(BlockedURLError):
        check_url("http://127.0.0.2/", policy)
    with pytest.raises(BlockedURLError):
        check_url("http://192.168.0.1/", policy)


def test_allow_hosts_by_name_is_exact_and_case_insensitive() -> None:
    check_url("http://LocalHost/", FetchPolicy(allow_hosts=("localhost",)))
    with pytest.raises(BlockedURLError):
        check_url("http://localhost/", FetchPolicy(allow_hosts=("host",)))
    # A name allowance does not allow the same address reached by another name.
    with pytest.raises(BlockedURLError):
        check_url("http://127.0.0.1/", FetchPolicy(allow_hosts=("localhost",)))


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{port}/", "http://localhost:{port}/", "http://[::ffff:127.0.0.1]:{port}/"],
)
def test_fetching_loopback_is_refused_without_a_request(site: LocalSite, url: str) -> None:
    with guarded_client(DEFAULT_POLICY) as client, pytest.raises(BlockedURLError):
        fetch(client, url.format(port=site.port), DEFAULT_POLICY)
    assert site.requests == []


def test_the_client_refuses_at_connect_time_without_any_prior_check(site: LocalSite) -> None:
    # No check_url here: the refusal comes from the network backend itself, which is what
    # keeps a name that re-resolves between check and connect (DNS rebinding) out.
    with guarded_client(DEFAULT_POLICY) as client, pytest.raises(BlockedURLError):
        client.get(site.url("/"))
    assert site.requests == []


def test_the_backend_vets_names_it_resolves(site: LocalSite) -> None:
    backend = GuardedNetworkBackend(DEFAULT_POLICY)
    with pytest.raises(BlockedURLError, match=r"127\.0\.0\.1"):
        backend.connect_tcp("localhost", site.port, timeout=1.0)
    with pytest.raises(BlockedURLError):
        backend.connect_unix_socket("/var/run/docker.sock")
    assert site.requests == []


def test_allowed_loopback_is_fetched_by_name_and_by_address(site: LocalSite) -> None:
    for allowance, host in (("127.0.0.1", "127.0.0.1"), ("localhost", "localhost")):
        policy = FetchPolicy(allow_hosts=(allowance,), timeout_seconds=1.0)
        with guarded_client(policy) as client:
            response = client.get(f"http://{host}:{site.port}/about")
        assert response.status_code == 200
        assert "About us" in response.text
    assert site.hits("/about") == 2


def test_environment_proxies_cannot_route_around_the_guard(
    site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The site is allowed; were the proxy honoured, a refused target would reach it.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, site.base_url)
    policy = FetchPolicy(allow_hosts=("127.0.0.1",), timeout_seconds=1.0)
    with guarded_client(policy) as client, pytest.raises(BlockedURLError):
        client.get(f"http://127.0.0.2:{site.port}/about")
    assert site.requests == []


def test_allowed_host_that_is_closed_gives_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = FetchPolicy(allow_hosts=("127.0.0.1",), timeout_seconds=1.0)
    with guarded_client(policy) as client, pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{port}/")
