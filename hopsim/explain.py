"""Why each principal holds what it holds, and which change would flip it.

The account reads the outcome's structured fields (cause, routers, relays);
every change it proposes is checked by playing the exchange again with the
change made, so it never suggests a fix that does not work.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hopsim.analysis import check
from hopsim.engine import play
from hopsim.imds import MAX_HOP_LIMIT
from hopsim.kinds import HTTP_METHODS, RelayPolicy
from hopsim.outcome import Access, Cause, Outcome
from hopsim.own_words import Words, for_node, for_setting
from hopsim.products import refusal_directive
from hopsim.profiles import profile
from hopsim.report.wording import finding, plural, reason
from hopsim.routing import Part, Route, Router
from hopsim.topology import Topology


@dataclass(frozen=True)
class Change:
    """A change to the design and what the principal would then hold."""

    description: str  # "raise the hop limit to 2"
    option: str  # the what-if option that tries it: "--hop-limit 2"
    access: Access
    # Loosens a control: IMDSv1 on, a relay passing PUT or dropping
    # X-Forwarded-For, a higher hop limit. Never proposed as a fix on that
    # ground alone; a higher hop limit is, when it lets no one else in.
    loosens: bool = False
    # What it would do to the other principals: "attacker would get a token".
    leaks: tuple[str, ...] = ()  # principals that would then leak
    starves: tuple[str, ...] = ()  # workloads that would then be starved
    # The edit itself: ("imds", {"hop_limit": 2}) or ("relay", NAME, RelayPolicy).
    edit: tuple[Any, ...] = field(default=(), compare=False, repr=False)
    # The same change in the user's words: the product's directive, the
    # settings file's line (hopsim.own_words); None where hopsim's key is all.
    words: Words | None = field(default=None, compare=False, repr=False)

    @property
    def harm(self) -> str:
        """The other principals it would hurt, in words ("" if none)."""
        parts = [f"{_names(self.leaks)} would get the token or credentials"] if self.leaks \
            else []
        if self.starves:
            parts.append(f"{_names(self.starves)} would get no token")
        return " and ".join(parts)


@dataclass(frozen=True)
class Explanation:
    outcome: Outcome
    route: Route
    story: str
    # For a leak or a starved workload: the changes that fix it without
    # loosening a control or letting anyone else in, best first.
    fixes: tuple[Change, ...] = ()
    # When there is none: why, in one plain sentence.
    no_fix: str | None = None
    # For a principal that is fine: the changes that would undo that.
    undone_by: tuple[Change, ...] = ()

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change the account mentions, each checked by playing it."""
        return self.fixes + self.undone_by

    @property
    def finding(self) -> str | None:
        """'leak' for an attacker holding anything, 'starved' for a workload
        without a token, else None."""
        return finding(self.outcome.role, self.outcome.access)


def _names(names: Sequence[str]) -> str:
    shown = list(names[:3])
    more = len(names) - len(shown)
    text = ", ".join(shown[:-1]) + (" and " if len(shown) > 1 and not more else "") + shown[-1] \
        if len(shown) > 1 else shown[0]
    return text + (f" and {more} more" if more else "")


def story(topology: Topology, o: Outcome) -> str:
    """The defence that stopped the principal, or the gap that let it through."""
    if o.cause is Cause.UNREACHABLE:
        return f"{o.node} cannot reach IMDS ({reason(o)})."
    h, k = o.hop_limit or 0, o.routers or 0
    budget = f"hop limit {h} lets it cross {plural(h - 1, 'router')}"
    stack = topology.nodes[o.node].network
    if o.access is Access.TOKEN and stack and o.receiver == o.node:
        runs_on = topology.nodes[o.node].runs_on
        return (f"{o.node} gets a token through its {stack} stack: a user-space process in "
                f"{runs_on}'s stack ends each of its TCP connections and opens its own, so "
                f"the token response crosses only {plural(k, 'router')} to reach it "
                f"({budget}) and is handed to {o.node} in fresh packets (TTL 64).")
    if o.access is Access.TOKEN and o.receiver != o.node:
        relay = topology.nodes[o.receiver]  # type: ignore[index]
        text = (f"{o.node} gets a token through {o.receiver} ({relay.kind}): the token "
                f"response crosses {plural(k, 'router')} to reach {o.receiver} ({budget}), then "
                f"{o.receiver} re-sends it with a fresh TTL of 64, so the hop limit guards "
                f"only the way from IMDS to {o.receiver}.")
        if relay.relay and not relay.relay.adds_xff:
            text += (f" {o.receiver} adds no X-Forwarded-For, so IMDS cannot tell the PUT "
                     "was relayed." if not relay.passes_bytes else
                     f" {o.receiver} passes the bytes: IMDS sees the PUT as the client sent "
                     "it, from the relay's address.")
        return text
    if o.access is Access.TOKEN:
        return (f"{o.node} gets a token: its token response crosses {plural(k, 'router')} "
                f"and {budget}.")
    if o.cause is Cause.TTL:
        to = f" on its way to {o.receiver}" if o.receiver != o.node else ""
        text = (f"The hop limit stops {o.node}: the token response leaves IMDS with TTL {h} "
                f"and dies at {o.dropped_at}{to} (ICMP Time Exceeded), as it has "
                f"{plural(k, 'router')} to cross and {budget}.")
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
    elif o.cause is Cause.FILTERED:
        text = (f"A packet filter stops {o.node}: {o.filtered_at}'s rule {o.filter}, "
                "whatever the hop limit.")
    elif o.cause is Cause.DISABLED:
        text = "IMDS is turned off (http_endpoint: disabled): it refuses everything."
    else:
        text = f"{o.node} gets no token: {reason(o)}."
    if o.access is Access.CREDENTIALS:
        text += (" But IMDSv1 is on (http_tokens: optional): the tokenless GET is not "
                 "TTL-limited and returns the role's credentials.")
    return text


def explain(topology: Topology, principal: str, router: Router | None = None) -> Explanation:
    router = router or Router(topology)
    outcome = play(topology, principal, router=router).outcome
    route = router.route(principal)
    account = story(topology, outcome)
    tried = [c for c in _candidates(topology, principal, outcome, route)
             if c.access is not outcome.access]
    if not finding(outcome.role, outcome.access):
        undone = tuple(c for c in tried if finding(outcome.role, c.access))
        return Explanation(outcome, route, account, undone_by=undone)
    before = _findings(topology)
    fixing = [_with_harm(c, topology, before, principal) for c in tried
              if not finding(outcome.role, c.access)]
    # A fix never loosens a control, except the hop limit raised for a starved
    # workload (AWS's own advice for containers), and never lets anyone in;
    # those that starve another workload come last, with that said.
    fixes = tuple(sorted((c for c in fixing if not c.leaks and (
        not c.loosens or c.option.startswith("--hop-limit"))), key=lambda c: bool(c.starves)))
    no_fix = None if fixes else _no_fix(outcome, fixing)
    return Explanation(outcome, route, account, fixes=fixes, no_fix=no_fix)


def _no_fix(o: Outcome, fixing: Sequence[Change]) -> str:
    """Why no single change fixes the principal, plainly."""
    text = f"No single change fixes {o.node}"
    harmful = [c for c in fixing if c.leaks]
    loosening = [c for c in fixing if c.loosens and not c.leaks]
    if harmful:
        c = harmful[0]
        return f"{text}: {c.description} ({c.option}) would fix it, but {c.harm}."
    if loosening:
        c = loosening[0]
        return (f"{text} without loosening a control: {c.description} ({c.option}) would "
                "give it a token, and take a defence away from everyone on that path.")
    return f"{text}: none of the hop limit, http_tokens or relay changes tried does."


def explain_all(topology: Topology) -> list[Explanation]:
    router = Router(topology)
    return [explain(topology, p, router) for p in topology.principals]


def _findings(topology: Topology) -> dict[str, str]:
    """Each principal with a finding at the configured hop limits: leak or starved."""
    found = {}
    for result in check(topology).results:
        for o in result.outcomes:
            what = finding(o.role, o.access)
            if what:
                found[o.node] = what
    return found


def _with_harm(change: Change, topology: Topology, before: Mapping[str, str],
               principal: str) -> Change:
    """The change, with the principals it would newly make leak or starve."""
    after = _findings(_apply(topology, change.edit))
    new = sorted(n for n, what in after.items() if n != principal and before.get(n) != what)
    return replace(change, leaks=tuple(n for n in new if after[n] == "leak"),
                   starves=tuple(n for n in new if after[n] == "starved"))


def _candidates(topology: Topology, principal: str, o: Outcome,
                route: Route) -> Iterator[Change]:
    """Changes worth trying, each already played: hop limit, tokens, relays."""
    h = o.hop_limit
    routers = len(route.token_routers)
    if h is not None and routers:
        budget = profile(topology, principal)
        if h > routers:
            access = budget.at(routers).access
            yield Change(f"lower the hop limit to {routers}", f"--hop-limit {routers}", access,
                         edit=("imds", {"hop_limit": routers}),
                         words=for_setting(topology, "hop_limit", routers))
        elif routers < MAX_HOP_LIMIT:
            access = budget.at(routers + 1).access
            yield Change(f"raise the hop limit to {routers + 1}", f"--hop-limit {routers + 1}",
                         access, loosens=True, edit=("imds", {"hop_limit": routers + 1}),
                         words=for_setting(topology, "hop_limit", routers + 1))
    if h is not None:
        imds_node = topology.nodes[route.imds]  # type: ignore[index]
        other = "required" if imds_node.imds.http_tokens == "optional" else "optional"
        verb = "require tokens" if other == "required" else "allow IMDSv1"
        changed = topology.with_imds(http_tokens=other)
        yield Change(f"{verb} (http_tokens: {other})", f"--http-tokens {other}",
                     play(changed, principal).outcome.access, loosens=other == "optional",
                     edit=("imds", {"http_tokens": other}),
                     words=for_setting(topology, "http_tokens", other))
    for relay in dict.fromkeys(s.relay for s in route.stations if s.part is Part.RELAY):
        policy = topology.nodes[relay].relay  # type: ignore[index]
        assert policy is not None
        node = topology.nodes[relay]  # type: ignore[index]
        if node.passes_bytes:
            # No HTTP to change: an L4 relay or stack can only refuse IMDS, where
            # the product can be told to (microsocks cannot).
            if node.product and refusal_directive(node.product, node.mode, node.kind) is None:
                continue
            refuse = not policy.refuses_imds
            what = (f"let {relay} reach IMDS" if not refuse else
                    f"blackhole IMDS in {relay}'s own namespace (block_imds)"
                    if topology.nodes[relay].network else  # type: ignore[index]
                    f"make {relay} open no connection to IMDS (block_imds)")
            yield _relay_change(topology, principal, relay,  # type: ignore[arg-type]
                                replace(policy, refuses_imds=refuse), what,
                                f"--set {relay}.block_imds={str(refuse).lower()}",
                                loosens=not refuse,
                                words=for_node(topology, relay, "block_imds", refuse))
            continue
        xff = not policy.adds_xff
        yield _relay_change(topology, principal, relay, replace(policy, adds_xff=xff),
                            f"make {relay} {'add' if xff else 'drop'} X-Forwarded-For",
                            f"--set {relay}.adds_xff={str(xff).lower()}", loosens=not xff,
                            words=for_node(topology, relay, "adds_xff", xff))
        methods = list(policy.methods or HTTP_METHODS)
        if "PUT" in methods:
            methods.remove("PUT")
            what = f"stop {relay} passing PUT"
        else:
            methods.append("PUT")
            what = f"let {relay} pass PUT"
        yield _relay_change(topology, principal, relay, replace(policy, methods=tuple(methods)),
                            what, f"--set {relay}.methods=[{','.join(methods)}]",
                            loosens="PUT" in methods,
                            words=for_node(topology, relay, "methods", methods))


def _relay_change(topology: Topology, principal: str, relay: str, policy: RelayPolicy,
                  description: str, option: str, loosens: bool, words: Words | None
                  ) -> Change:
    edit = ("relay", relay, policy)
    changed = _apply(topology, edit)
    return Change(description, option, play(changed, principal).outcome.access, loosens,
                  edit=edit, words=words)


def _apply(topology: Topology, edit: tuple[Any, ...]) -> Topology:
    """The topology with a Change's edit made."""
    if edit[0] == "imds":
        return topology.with_imds(**edit[1])
    return topology.with_node(edit[1], relay=edit[2])
