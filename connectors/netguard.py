"""Refuse requests to private, loopback, link-local and metadata addresses (SSRF guard).

A URL given by a site owner, a sitemap or a link on a page must never make the server talk to
itself, to its private network or to a cloud metadata service. The guard works at two points:

* ``check_url`` resolves the host and vets every address before a request (and before each
  redirect hop), for an early and clear error;
* ``guarded_client`` returns an ``httpx.Client`` whose network backend resolves the host itself
  at connect time, vets every resolved address and connects to a vetted IP, so a name that
  resolves differently between the check and the connection (DNS rebinding) is still refused.

``FetchPolicy.allow_hosts`` exempts addresses: an entry that parses as an IP address or CIDR
allows the addresses inside it; any other entry is a host name (case-insensitive, exact) whose
resolved addresses are all allowed.

Example::

    policy = FetchPolicy()
    check_url("https://example.com/", policy)  # returns, or raises BlockedURLError
    with guarded_client(policy) as client:
        response = client.get("https://example.com/")
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

from connectors.base import FetchPolicy
from connectors.errors import BlockedURLError, FetchError

__all__ = [
    "GuardedNetworkBackend",
    "check_url",
    "guarded_client",
    "is_refused_address",
    "parse_http_url",
    "resolve_host",
    "vetted_addresses",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})

# Cloud metadata services that a plain range check might not name on its own.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6 metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
    }
)

CGNAT_NETWORK = ipaddress.ip_network("100.64.0.0/10")
# NAT64 prefixes embed an IPv4 address in the low 32 bits (RFC 6052 and RFC 8215).
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def parse_http_url(url: str) -> httpx.URL:
    """Parse ``url`` and require an http(s) scheme and a host.

    Raises:
        BlockedURLError: the scheme is not http or https (``file:``, ``gopher:``, ...).
        FetchError: the text is not a URL with a host.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise FetchError(url, f"not a valid URL ({error}); give an http(s) address") from error
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise BlockedURLError(
            url, f"scheme {parsed.scheme or '(none)'!r} is refused; only http and https are fetched"
        )
    if not parsed.host:
        raise FetchError(url, "the URL has no host name; give an absolute http(s) address")
    return parsed


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_refused_address(address: IPAddress) -> bool:
    """Tell whether an address is one a fetch must never reach without an explicit allowance.

    Refused: loopback, private (RFC 1918, fc00::/7), link-local, CGNAT (100.64/10), multicast,
    reserved, unspecified, anything else not globally routable, cloud metadata addresses, and
    IPv6 forms (IPv4-mapped, 6to4, NAT64) that embed a refused IPv4 address.
    """
    if address in METADATA_ADDRESSES:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            # These forms reach the IPv4 address they carry; judge that address.
            return is_refused_address(embedded)
        if address.is_site_local:
            return True
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT_NETWORK:
        return True
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _split_allowances(allow_hosts: Iterable[str]) -> tuple[list[IPNetwork], set[str]]:
    """Split ``allow_hosts`` into networks (IPs and CIDRs) and lower-cased host names."""
    networks: list[IPNetwork] = []
    names: set[str] = set()
    for entry in allow_hosts:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            names.add(text.lower().rstrip("."))
    return networks, names


def _normalised_host(host: str) -> str:
    """Lower-case a host name and drop IPv6 brackets and a trailing dot."""
    return host.strip("[]").lower().rstrip(".")


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` to its addresses, in the resolver's order, without duplicates.

    Raises:
        FetchError: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(_normalised_host(host), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(
            host, f"could not resolve host name ({error}); check the address"
        ) from error
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # Drop an IPv6 scope ("fe80::1%eth0") before parsing; the range check does not need it.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def vetted_addresses(host: str, port: int, policy: FetchPolicy) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses if every one of them may be reached.

    Raises:
        BlockedURLError: some resolved address is refused and not allowed by the policy.
        FetchError: the name does not resolve.
    """
    networks, names = _split_allowances(policy.allow_hosts)
    addresses = resolve_host(host, port)
    if _normalised_host(host) in names:
        return addresses
    for address in addresses:
        if not is_refused_address(address):
            continue
        if any(address.version == network.version and address in network for network in networks):
            continue
        raise BlockedURLError(
            host,
            f"resolves to {address}, a private, loopback, link-local or metadata address; "
            "add the host or its network to allow_hosts (ASSISTANT_FETCH_ALLOW_HOSTS) "
            "if it is meant to be fetched",
        )
    return addresses


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse ``url`` unless it is http(s) and its host resolves only to reachable addresses.

    Raises:
        BlockedURLError: the scheme is not http(s), or the host resolves to a refused address.
        FetchError: the URL is invalid or its host does not resolve.
    """
    parsed = parse_http_url(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        vetted_addresses(parsed.host, port, policy)
    except BlockedURLError as error:
        raise BlockedURLError(url, error.reason) from error
    except FetchError as error:
        raise FetchError(url, error.reason) from error


class GuardedNetworkBackend(httpcore.NetworkBackend):
    """An httpcore network backend that connects only to addresses the policy allows.

    It resolves the host itself, vets every resolved address and opens the TCP connection to
    a vetted IP. TLS is started afterwards by httpcore with the origin's host name, so SNI and
    certificate checks still use the name, not the IP.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve, vet, then connect to the first vetted address that accepts."""
        try:
            addresses = vetted_addresses(host, port, self._policy)
        except FetchError as error:
            if isinstance(error, BlockedURLError):
                raise
            raise httpcore.ConnectError(error.reason) from error
        last_error: Exception | None = None
        for address in addresses:
            try:
                return self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        if last_error is not None:
            raise last_error
        raise httpcore.ConnectError(f"{host} resolved to no address")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Refuse: fetches never go through local sockets."""
        raise BlockedURLError(path, "unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        """Sleep between httpcore's own connection retries (unused: retries are off)."""
        self._backend.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool rebuilt on the guarded backend.

    ``HTTPTransport`` offers no parameter for a network backend, so the pool it builds is
    replaced right away by an equal one (same TLS context and limits, no proxy) that uses
    ``GuardedNetworkBackend``. Everything else, exception mapping and streaming included,
    stays httpx's own.
    """

    def __init__(self, policy: FetchPolicy, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy),
        )


def guarded_client(policy: FetchPolicy) -> httpx.Client:
    """Return an ``httpx.Client`` that refuses private addresses at connect time.

    Redirects are not followed (the fetcher follows them hop by hop, checking each), proxies
    and certificate settings from the environment are ignored so they cannot route around the
    guard, and every request carries the policy's User-Agent and timeout.
    """
    connections = max(policy.concurrency, 1)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(
        transport=_GuardedTransport(policy, limits),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(policy.timeout_seconds),
        headers={"User-Agent": policy.user_agent},
    )
