"""Why each principal holds what it holds, and which change would flip it.

The account reads the outcome's structured fields (cause, routers, relays);
every change it proposes is checked by playing the exchange again with the
change made, so it never suggests a fix that does not work.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from hopsim.analysis import profile
from hopsim.engine import Access, Cause, Outcome, play
from hopsim.imds import MAX_HOP_LIMIT
from hopsim.kinds import HTTP_METHODS
from hopsim.routing import Role, Route, Router
from hopsim.topology import Topology


@dataclass(frozen=True)
class Change:
    """A change to the design and what the principal would then hold."""

    description: str  # "raise the hop limit to 2"
    option: str  # the what-if option that tries it: "--hop-limit 2"
    access: Access


@dataclass(frozen=True)
class Explanation:
    outcome: Outcome
    route: Route
    story: str
    changes: tuple[Change, ...]

    @property
    def finding(self) -> str | None:
        """'leak' for an attacker holding anything, 'starved' for a workload
        without a token, else None."""
        o = self.outcome
        if o.role == "attacker" and o.access is not Access.NONE:
            return "leak"
        if o.role == "workload" and o.access is not Access.TOKEN:
            return "starved"
        return None


def _routers(n: int) -> str:
    return f"{n} router" + ("" if n == 1 else "s")


def story(topology: Topology, o: Outcome) -> str:
    """The defence that stopped the principal, or the gap that let it through."""
    if o.cause is Cause.UNREACHABLE:
        return f"{o.node} cannot reach IMDS ({o.reason})."
    h, k = o.hop_limit or 0, o.routers or 0
    budget = f"hop limit {h} lets it cross {_routers(h - 1)}"
    if o.access is Access.TOKEN and o.receiver != o.node:
        relay = topology.nodes[o.receiver]  # type: ignore[index]
        text = (f"{o.node} gets a token through {o.receiver} ({relay.kind}): the token "
                f"response crosses {_routers(k)} to reach {o.receiver} ({budget}), then "
                f"{o.receiver} re-sends it with a fresh TTL of 64, so the hop limit guards "
                f"only the way from IMDS to {o.receiver}.")
        if relay.relay and not relay.relay.adds_xff:
            text += (f" {o.receiver} adds no X-Forwarded-For, so IMDS cannot tell the PUT "
                     "was relayed.")
        return text
    if o.access is Access.TOKEN:
        return f"{o.node} gets a token: its token response crosses {_routers(k)} and {budget}."
    if o.cause is Cause.TTL:
        to = f" on its way to {o.receiver}" if o.receiver != o.node else ""
        text = (f"The hop limit stops {o.node}: the token response leaves IMDS with TTL {h} "
                f"and dies at {o.dropped_at}{to} (ICMP Time Exceeded), as it has "
                f"{_routers(k)} to cross and {budget}.")
    elif o.cause is Cause.METHOD and o.sent_as:
        text = (f"The PUT requirement stops {o.node}: {o.by[0]} sends every request as a "
                f"{o.sent_as}, and IMDS gives tokens only to a PUT.")
    elif o.cause is Cause.METHOD:
        text = (f"The PUT requirement stops {o.node}: {o.by[0]} does not pass PUT, so the "
                "token request never reaches IMDS.")
    elif o.cause is Cause.XFF:
        text = (f"The X-Forwarded-For rule stops {o.node}: {', '.join(o.by)} adds "
                "X-Forwarded-For, and IMDS refuses a token PUT that carries it.")
    elif o.cause is Cause.TTL_HEADER:
        text = (f"{', '.join(o.by)} does not pass on the X-aws-ec2-metadata-token-ttl-seconds "
                f"header, so IMDS refuses {o.node}'s PUT (400).")
    elif o.cause is Cause.DISABLED:
        text = "IMDS is turned off (http_endpoint: disabled): it refuses everything."
    else:
        text = f"{o.node} gets no token: {o.reason}."
    if o.access is Access.CREDENTIALS:
        text += (" But IMDSv1 is on (http_tokens: optional): the tokenless GET is not "
                 "TTL-limited and returns the role's credentials.")
    return text


def explain(topology: Topology, principal: str, router: Router | None = None) -> Explanation:
    router = router or Router(topology)
    outcome = play(topology, principal, router=router).outcome
    route = router.route(principal)
    changes = tuple(c for c in _candidates(topology, principal, outcome, route)
                    if c.access is not outcome.access)
    return Explanation(outcome, route, story(topology, outcome), changes)


def explain_all(topology: Topology) -> list[Explanation]:
    router = Router(topology)
    return [explain(topology, p, router) for p in topology.principals]


def _candidates(topology: Topology, principal: str, o: Outcome,
                route: Route) -> Iterator[Change]:
    """Changes worth trying, each already played: hop limit, tokens, relays."""
    h = o.hop_limit
    routers = len(route.token_routers)
    if h is not None and routers:
        budget = profile(topology, principal)
        if h > routers:
            access = budget.at(routers).access
            yield Change(f"lower the hop limit to {routers}", f"--hop-limit {routers}", access)
        elif routers < MAX_HOP_LIMIT:
            access = budget.at(routers + 1).access
            yield Change(f"raise the hop limit to {routers + 1}", f"--hop-limit {routers + 1}",
                         access)
    if h is not None:
        imds_node = topology.nodes[route.imds]  # type: ignore[index]
        other = "required" if imds_node.imds.http_tokens == "optional" else "optional"
        verb = "require tokens" if other == "required" else "allow IMDSv1"
        changed = topology.with_imds(http_tokens=other)
        yield Change(f"{verb} (http_tokens: {other})", f"--http-tokens {other}",
                     play(changed, principal).outcome.access)
    for relay in dict.fromkeys(s.relay for s in route.stations if s.role is Role.RELAY):
        policy = topology.nodes[relay].relay  # type: ignore[index]
        assert policy is not None
        xff = not policy.adds_xff
        yield _relay_change(topology, principal, relay, replace(policy, adds_xff=xff),
                            f"make {relay} {'add' if xff else 'drop'} X-Forwarded-For",
                            f"--set {relay}.adds_xff={str(xff).lower()}")
        methods = list(policy.methods or HTTP_METHODS)
        if "PUT" in methods:
            methods.remove("PUT")
            what = f"stop {relay} passing PUT"
        else:
            methods.append("PUT")
            what = f"let {relay} pass PUT"
        yield _relay_change(topology, principal, relay, replace(policy, methods=tuple(methods)),
                            what, f"--set {relay}.methods=[{','.join(methods)}]")


def _relay_change(topology: Topology, principal: str, relay: str, policy: object,
                  description: str, option: str) -> Change:
    changed = topology.with_node(relay, relay=policy)
    return Change(description, option, play(changed, principal).outcome.access)
