"""Who is asking: the client address used for rate limits and login lockouts.

The address is the TCP peer's. `X-Forwarded-For` is read only when that peer is one of the
configured `trusted_proxies` (default: none), and then the nearest address in the header that is
not itself a trusted proxy counts, so a client cannot pick its own address by sending the header.
uvicorn's own proxy-header handling (which trusts loopback) is switched off (ui/server.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from functools import lru_cache

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=32)
def _networks(proxies: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: Sequence[_Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


def client_address(
    peer: str | None, headers: Mapping[str, str], trusted_proxies: tuple[str, ...]
) -> str:
    """The address a request counts against.

    >>> client_address("127.0.0.1", {"x-forwarded-for": "6.6.6.6"}, ())
    '127.0.0.1'
    >>> client_address("10.0.0.2", {"x-forwarded-for": "6.6.6.6, 7.7.7.7"}, ("10.0.0.0/8",))
    '7.7.7.7'
    """
    peer = peer or "unknown"
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
    for address in reversed(forwarded):
        if not _trusted(address, networks):
            return address[:64]
    return peer
