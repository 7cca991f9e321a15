"""The topology file format as tables (each key's type, choices, bounds, meaning):
the checker validates with them and schema.py is made from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from hopsim.imds import HTTP_ENDPOINT, HTTP_TOKENS, MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.kinds import KINDS, ROLES
from hopsim.products import MODES, PRODUCTS, STACKS

OUTCOMES = ("token", "credentials", "none")
MAX_REPLICAS = 10**9  # copies of a node or a unit: counted, never built
RESERVED = "/#"  # UNIT/NODE names a unit's node; NODE#3 and UNIT#17 name copies
RESERVED_CHARS = frozenset(RESERVED)
# Keys only a topology has at its top; see is_topology.
TOPOLOGY_KEYS = ("nodes", "units", "links", "imds", "expect")
FAMILIES = (4, 6)


@dataclass(frozen=True)
class Field:
    """One key of the file format: its type, its domain and what it means.

    The loader validates with these, and the JSON schema is made from them.
    """

    name: str
    type: type | tuple[type, ...]
    doc: str
    required: bool = False
    choices: tuple[Any, ...] | None = None
    bounds: tuple[int, int] | None = None


TOP_FIELDS = (
    Field("name", str, "unique name of the topology", required=True),
    Field("description", str, "what the topology teaches and why its expectations hold",
          required=True),
    Field("imds", dict, "defaults for every imds node"),
    Field("nodes", dict, "node name -> node (optional when units are given)"),
    Field("links", list, "pairs of node names (optional when units are given)"),
    Field("units", dict, "unit name -> a unit: `count` identical copies of its nodes and "
          "links (a fleet of instances); its nodes are named UNIT/NODE"),
    Field("expect", dict, "hop limit -> node -> expected outcome"),
)
UNIT_FIELDS = (
    Field("count", int, "how many identical copies of the unit (UNIT#1 .. UNIT#N)",
          required=True, bounds=(1, MAX_REPLICAS)),
    Field("description", str, "free text"),
    Field("nodes", dict, "node name -> node, as at the top level", required=True),
    Field("links", list, "pairs of the unit's node names", required=True),
)
IMDS_FIELDS = (
    Field("hop_limit", int, "HttpPutResponseHopLimit: the token response's IP TTL",
          bounds=(MIN_HOP_LIMIT, MAX_HOP_LIMIT)),
    Field("http_tokens", str, "required: IMDSv2 only; optional: IMDSv1 still answers",
          choices=HTTP_TOKENS),
    Field("http_endpoint", str, "disabled: IMDS answers 403 to everything",
          choices=HTTP_ENDPOINT),
    Field("ipv6", bool, "IMDS also answers on [fd00:ec2::254]"),
)
NODE_FIELDS = (
    Field("kind", str, "what the node does to a packet", required=True, choices=tuple(KINDS)),
    Field("role", str, "workload: must get a token; attacker: must get nothing",
          choices=ROLES),
    Field("runs_on", str, "the host whose network stack this node shares (no links); with "
          "network: the node whose stack opens its connections (a host or a container)"),
    Field("via", list, "waypoints this principal's requests go through, in order"),
    Field("family", int, "the IP version this principal uses to reach IMDS",
          choices=FAMILIES),
    Field("address", str, "pinned IPv4 address"),
    Field("address6", str, "pinned IPv6 address"),
    Field("description", str, "free text"),
)
PRINCIPAL_KEYS = ("role", "via", "family")  # NODE_FIELDS only principals take
KIND_FIELDS = {
    "forwarding": Field("forwarding", (bool, str), "the host routes between its links "
                        "(TTL -1): true (both families), ipv4, ipv6 or false",
                        choices=(True, False, "ipv4", "ipv6")),
    "masquerade": Field("masquerade", (bool, list), "rewrite the source of what is forwarded "
                        "(NAT): true on every link, or the neighbours whose links it "
                        "masquerades out of (a NAT on its uplink only)"),
    "methods": Field("methods", list, "HTTP methods the relay passes on (default: kind's)"),
    "adds_xff": Field("adds_xff", bool, "the relay adds or appends X-Forwarded-For"),
    "forwards_headers": Field("forwards_headers", bool,
                              "the relay passes on the headers it received"),
    "gateway": Field("gateway", str, "the node's default route: the neighbour it sends to "
                     "when its table has no better entry (a node sharing a segment, which "
                     "forwards)"),
    "routes": Field("routes", dict, "destination node (or `imds`) -> the neighbour to send it "
                    "to; overrides the computed table"),
    "filters": Field("filters", list, "packet filter rules of this node's stack, first "
                     "match wins: {chain: input|forward|output, from: NEIGHBOUR or PRINCIPAL, "
                     "to: NODE or imds, owner: NODE (output only: the sockets its process "
                     "opens here), action: drop|reject}; docs/mitigations.md"),
    "block_imds": Field("block_imds", bool, "blackhole routes for the metadata addresses in "
                        "this namespace (what ECS_AWSVPC_BLOCK_IMDS does); on a relay: it "
                        "opens no connection to them (the product's own rule, e.g. sshd's "
                        "PermitOpen)"),
    "network": Field("network", str, "a user-space network stack that ends each of its TCP "
                     "connections and opens its own in runs_on's stack (rootless containers, "
                     "a VM's user-mode network): fresh TTL 64, runs_on's address; needs "
                     "runs_on", choices=tuple(STACKS)),
    "version": Field("version", str, "the network stack's version, where its behaviour "
                     "changed (gvisor-tap-vsock 3.0.0 refused 169.254.169.254); default: "
                     "the version that exposes"),
    "intercepts": Field("intercepts", bool, "its host DNATs the metadata address, for "
                        "what it routes, to this relay (kube2iam, kiam): every request "
                        "crossing the host towards IMDS is answered or relayed here"),
    "product": Field("product", str, "the real relay it is: sets every default above "
                     "(keys written on the node still override); docs/products.md",
                     choices=tuple(PRODUCTS)),
    "mode": Field("mode", str, "how a product that is both relays: reverse or forward",
                  choices=MODES),
    **{f.name: f for f in IMDS_FIELDS},
    "replicas": Field("replicas", int, "this many identical copies of the node, each with "
                      "its links (NODE#1 .. NODE#N); analysed once, reported together",
                      bounds=(1, MAX_REPLICAS)),
    "instance": Field("instance", str, "the real instance whose settings `--settings` and "
                      "`hopsim import` apply: a Terraform address (aws_instance.web, "
                      "module.app.aws_launch_template.web) or an instance id"),
}


class FieldTable(dict):
    """Fields by name, and the names a mapping must have (found once)."""

    def __init__(self, fields: Iterable[Field]):
        super().__init__((f.name, f) for f in fields)
        self.required = tuple(f.name for f in self.values() if f.required)


@cache
def node_fields(kind: str) -> FieldTable:
    """The keys a node of this kind may have: every node's, then its kind's."""
    own = [spec for key, spec in KIND_FIELDS.items()  # in table order: keys is a frozenset
           if key in KINDS[kind].keys]
    return FieldTable([*NODE_FIELDS, *own])
