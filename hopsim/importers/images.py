"""What a container image tells about a service: an L7 relay, a VPN endpoint,
a Docker daemon. One table, read by every importer.

hopsim cannot read a relay's configuration (nginx.conf, haproxy.cfg), so an
image known to be a relay is modelled as an open one: one that would pass an
outsider's request on to 169.254.169.254. That is the pessimistic reading; a
file says otherwise with `relay: false` (compose `x-hopsim:`, the
`hopsim.io/relay` annotation, the `hopsim.relay` docker label).

X-Forwarded-For defaults come from hopsim's table of products
(hopsim/products.py, measured on Debian's binaries; docs/products.md):
nginx, HAProxy and tinyproxy add none by default; Squid adds it in every
mode; Apache adds it as a reverse proxy (ProxyPass) but not as a forward
proxy (ProxyRequests On), so an httpd image, whose mode hopsim cannot see,
is taken as the forward proxy, which adds none. Traefik, Envoy, Caddy,
Varnish and Kong were not measured [U]: taken as adding none, the reading
that never hides a leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hopsim.products import PRODUCTS, Form


@dataclass(frozen=True)
class Relay:
    """A relay's kind and policy, as an importer writes it on a node."""

    kind: str  # proxy, waf, ssrf
    adds_xff: bool
    methods: tuple[str, ...] | None  # None: the kind's default (any method for a proxy)
    forwards_headers: bool
    description: str
    product: str | None = None  # the product it is (hopsim.products), when measured
    mode: str | None = None


def _proxy(what: str, adds_xff: bool, why: str) -> Relay:
    return Relay("proxy", adds_xff, None, True,
                 f"{what}: assumed an open relay (hopsim cannot read its configuration); "
                 f"{why}")


_NO_XFF = "adds no X-Forwarded-For by default"
_UNMEASURED = "its X-Forwarded-For default is not measured [U]: taken as adding none"


def _product(what: str, product: str, mode: str | None = None, why: str = "") -> Relay:
    """A relay image whose product hopsim measured: its default, from the one table."""
    adds_xff = PRODUCTS[product].setup(mode).policy.adds_xff
    said = "adds X-Forwarded-For by default" if adds_xff else _NO_XFF
    return _proxy(what, adds_xff, f"{said}{why} (docs/products.md)")


# Image name (the last part of the repository, without tag or digest) -> relay.
RELAYS: dict[str, Relay] = {
    "nginx": _product("nginx", "nginx"),
    "nginx-unprivileged": _product("nginx", "nginx"),
    "openresty": _product("OpenResty (nginx)", "nginx"),
    "ingress-nginx": _product("ingress-nginx", "nginx", why=" to an upstream it is pointed "
                              "at [U]"),
    "haproxy": _product("HAProxy", "haproxy", why="; option forwardfor adds it"),
    "tinyproxy": _product("tinyproxy", "tinyproxy"),
    "squid": _product("Squid", "squid", why=", in every mode"),
    "httpd": _product("Apache httpd", "apache", "forward", why=" as a forward proxy (as a "
                      "reverse proxy it adds it; hopsim cannot see which)"),
    "apache": _product("Apache httpd", "apache", "forward", why=" as a forward proxy (as a "
                       "reverse proxy it adds it; hopsim cannot see which)"),
    "traefik": _proxy("Traefik", False, _UNMEASURED),
    "envoy": _proxy("Envoy", False, _UNMEASURED),
    "caddy": _proxy("Caddy", False, _UNMEASURED),
    "varnish": _proxy("Varnish", False, _UNMEASURED),
    "kong": _proxy("Kong", False, _UNMEASURED),
}

# VPN endpoints: remote peers' packets come out of the tunnel here and are
# routed on, one decrement per endpoint that routes [U].
VPNS = ("wireguard", "wg-easy", "openvpn", "openvpn-as", "strongswan", "ipsec-vpn-server",
        "tailscale", "zerotier", "softether", "pritunl", "netbird")

# Sysctls that make a network namespace route between its interfaces.
FORWARDING_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding",
                      "net.ipv6.conf.all.forwarding", "net.ipv6.conf.default.forwarding")

_TAG = re.compile(r"[:@].*$")


def image_name(image: object) -> tuple[str, str]:
    """`registry/ns/nginx:1.25@sha256:...` -> ("nginx", "1.25"): the last part
    of the repository and the tag, lower case; ("", "") when unknown. `${VAR}`
    is read as written: `${REGISTRY}/nginx:${TAG}` is still nginx."""
    if not isinstance(image, str) or not image.strip():
        return "", ""
    last = image.strip().lower().rsplit("/", 1)[-1]
    name = _TAG.sub("", last)
    tag = last[len(name) + 1:] if last[len(name):len(name) + 1] == ":" else ""
    return name, tag.split("@", 1)[0]


def relay_of(image: object) -> Relay | None:
    name, _ = image_name(image)
    if name in RELAYS:
        return RELAYS[name]
    if isinstance(image, str) and "ingress-nginx" in image.lower():
        return RELAYS["ingress-nginx"]
    return None


# L4 relay images (issue 22): a port forward is an IMDS relay only when its
# command names the metadata address as its upstream; a SOCKS server opens
# any destination it is asked for, so it is one whatever its command says.
L4_IMAGES = {"socat": "socat", "microsocks": "microsocks", "dante": "dante",
             "danted": "dante"}
METADATA_ADDRESSES = ("169.254.169.254", "fd00:ec2::254")


def l4_relay_of(image: object, command: object) -> Relay | None:
    """The L4 relay a container is, from its image and command (compose's
    `command:`, a string or a list), or None."""
    name, _ = image_name(image)
    product = L4_IMAGES.get(name)
    if product is None:
        return None
    words = " ".join(map(str, command)) if isinstance(command, list) else str(command or "")
    socks = PRODUCTS[product].setup(None, "relay").form is Form.SOCKS
    if not socks and not any(a in words for a in METADATA_ADDRESSES):
        return None  # a forward to somewhere else: not a way to IMDS
    why = ("a SOCKS server opens any destination it is asked for" if socks else
           "its command forwards to 169.254.169.254")
    return Relay("relay", False, None, True, f"{product}: an L4 relay; {why} "
                 "(docs/products.md)", product=product)


def is_vpn(image: object) -> bool:
    name, _ = image_name(image)
    return name in VPNS or any(name.startswith(f"{vpn}-") for vpn in VPNS)


def is_docker_daemon(image: object) -> bool:
    """docker:dind, docker:27-dind, docker:dind-rootless: a Docker daemon that
    runs containers of its own behind its own bridge."""
    name, tag = image_name(image)
    return (name == "docker" and "dind" in tag) or name == "dind"


def forwards(sysctls: dict[str, str]) -> bool:
    return any(str(sysctls.get(key, "")).strip() == "1" for key in FORWARDING_SYSCTLS)
