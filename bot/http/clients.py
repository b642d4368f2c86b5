"""Which address a request came from, believing X-Forwarded-For only from the configured proxies.

`server.trusted_proxies` lists the reverse proxies (addresses or networks) in front of Sapa. A request whose
socket peer is one of them is read from the right of its X-Forwarded-For: each trusted hop is skipped and the
first address it does not trust is the client (what a client writes into the header itself sits further left
and is never reached). From any other peer the header is ignored and the socket address is the client's, so
nobody can pick their own address to dodge a per-address limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request, trusted_proxies: Iterable[str]) -> str:
    peer = request.client.host if request.client else "unknown"
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop[:64]  # a bucket key, whatever the proxy wrote
    return hops[0][:64] if hops else peer
