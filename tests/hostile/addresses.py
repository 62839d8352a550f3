"""The addresses no fetch may reach: every form of loopback, private, link-local, metadata and
otherwise internal address, as an attacker would write it in a URL.

Shared by the SSRF suite (every fetching path) and the guard's own unit tests.
"""

from __future__ import annotations

REFUSED_URLS: tuple[str, ...] = (
    # Loopback, private, link-local and cloud metadata, IPv4.
    "http://127.0.0.1/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    # IPv6: loopback, unspecified, link-local, unique-local, AWS's metadata address.
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    # IPv6 forms that embed a refused IPv4 address.
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",  # the same, in hexadecimal groups
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 wrapping 10.0.0.1
    # One IPv4 address written as a number, in octal, in hexadecimal or shortened.
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://2852039166/",  # 169.254.169.254 as one decimal number
    "http://0x7f.0.0.1/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    # Names that resolve to internal addresses.
    "http://localhost/",
    "http://localhost./",
)
"""Twenty-seven URLs, each refused unless its host is allowed in so many words."""

assert len(REFUSED_URLS) == 27
