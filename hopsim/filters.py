"""Packet filters: the `filters:` rules a node's stack applies, as the kernel's
netfilter hooks do (docs/mitigations.md).

A rule is (chain, from, to, action):

- `chain`: `input` (packets delivered to this stack), `forward` (packets it
  routes on) or `output` (packets it sends: its processes, the relays and the
  host-network containers that run on it);
- `from`: a neighbour (the link the packet arrives on, `iifname`) or a
  principal with a stack of its own (the packet's source address, as it is
  at this node: after a NAT on the way, the NAT's address is the source);
- `to`: `imds` (169.254.169.254 and fd00:ec2::254) or a node (its addresses);
- `owner` (output only): the node whose process opened the socket, as
  nftables' `meta skuid` matches its user: a relay running here, or the
  user-space stack of a rootless container or VM whose runs_on is here;
- `action`: `drop` (the sender hears nothing and waits until its timeout) or
  `reject` (a TCP reset: the connection fails at once).

Rules are stateless and see every packet of a connection, both ways: a rule
that drops the answer (the SYN-ACK) keeps the connection from opening as
surely as one that drops the request. The first matching rule decides.
"""

from __future__ import annotations

from dataclasses import dataclass

CHAINS = ("input", "forward", "output")
ACTIONS = ("drop", "reject")
IMDS = "imds"
RULE_KEYS = ("chain", "from", "to", "owner", "action")


@dataclass(frozen=True)
class Filter:
    """One rule of a node's `filters:`, as written (index: its place in the list)."""

    chain: str
    action: str
    source: str | None = None  # `from`: a neighbour, or a principal
    destination: str | None = None  # `to`: a node or imds
    index: int = 0
    owner: str | None = None  # output only: the node whose process opened the socket

    def describe(self) -> str:
        parts = [self.chain]
        if self.source:
            parts.append(f"from {self.source}")
        if self.owner:
            parts.append(f"owner {self.owner}")
        if self.destination:
            parts.append(f"to {self.destination}")
        return " ".join(parts) + f": {self.action}"


@dataclass(frozen=True)
class Packet:
    """What a rule can see of a packet at one node: the chain it is in, the
    neighbour it arrived from (None: sent here), and its addresses by node
    (`destination` "imds" for the metadata addresses)."""

    chain: str
    arrived_from: str | None
    source: str | None  # the node whose address the source is, if any
    destination: str | None
    owner: str | None = None  # the node whose process opened the socket (output only)


def first_match(rules: tuple[Filter, ...], packet: Packet, neighbours: frozenset[str]
                ) -> Filter | None:
    """The first of `rules` that matches `packet` at a node with `neighbours`."""
    for rule in rules:
        if rule.chain != packet.chain:
            continue
        if rule.source is not None:
            if rule.source in neighbours:
                if packet.arrived_from != rule.source:
                    continue
            elif packet.source != rule.source:
                continue
        if rule.destination is not None and packet.destination != rule.destination:
            continue
        if rule.owner is not None and packet.owner != rule.owner:
            continue
        return rule
    return None
