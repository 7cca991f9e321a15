"""An outcome in words: the sentences every report, picture and lesson shares.

hopsim.outcome holds the values; this module is the only place that turns
one outcome into English, so a table, a JSON reason and a SARIF message
never disagree.
"""

from __future__ import annotations

from http import HTTPStatus

from hopsim.outcome import Access, Cause, Outcome, Role, bad


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 router', '2 routers', '1,000 principals'."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


HOLDS = {Access.TOKEN: "gets a token", Access.CREDENTIALS: "gets IMDSv1 credentials",
         Access.NONE: "gets nothing"}


def finding(role: Role | str | None, access: Access) -> str | None:
    """'leak' for an attacker holding anything, 'starved' for a workload
    without a token, else None."""
    if not bad(role, access):
        return None
    return "leak" if role == Role.ATTACKER else "starved"


def role_of(o: Outcome, undeclared: frozenset[str] | set[str] = frozenset()) -> str:
    """The principal's role as reports show it: "untrusted" for an imported
    principal whose file declares none (judged as an attacker), "-" for none."""
    if o.role == Role.ATTACKER and o.node in undeclared:
        return "untrusted"
    return str(o.role) if o.role else "-"


def refusal(o: Outcome) -> str | None:
    """Why the token request failed, when the TTL is not why."""
    cause, by = o.cause, ", ".join(o.by)
    if cause is Cause.UNREACHABLE:
        return o.unreachable
    if cause is Cause.METHOD and o.sent_as:
        return (f"{by} sent the PUT as a {o.sent_as}: IMDS answered {o.status} "
                "(the token needs a PUT)")
    if cause is Cause.METHOD:
        return f"PUT refused by {by} ({o.status or 405}): it passes only {o.allowed}"
    if cause is Cause.FILTERED:
        return f"token request stopped at {o.filtered_at} by its filter {o.filter}"
    if cause is Cause.CLOSED:
        return (f"{by} opens no connection to IMDS: it closed the token request's "
                "connection unanswered")
    if cause is Cause.DISABLED:
        return "IMDS refused the PUT (403): http_endpoint is disabled"
    if cause is Cause.XFF:
        return f"IMDS refused the PUT (403): X-Forwarded-For added by {by}"
    if cause is Cause.TTL_HEADER:
        return f"IMDS refused the PUT (400): {by} did not pass on the ttl header"
    if cause is Cause.OTHER:
        if o.status is None:
            return "token request lost on the way (TTL exceeded)"
        return f"token request answered {o.status} {HTTPStatus(o.status).phrase}"
    return None


def fallback(o: Outcome) -> str | None:
    """What the IMDSv1 fallback GET got, if the principal tried it."""
    if o.fallback is None:
        return None
    if o.access is Access.CREDENTIALS:
        return (("after a timeout, " if o.waited else "")
                + "IMDSv1 fallback GET returned credentials (http_tokens: optional)")
    return f"IMDSv1 fallback GET refused ({o.fallback or 'no answer'})"


def reason(o: Outcome) -> str:
    """Why the principal holds what it holds, in a sentence (on a kernel:
    what was observed there)."""
    if o.observed is not None:
        return o.observed
    refused = refusal(o)
    if refused and o.routers is None:
        return refused
    parts = []
    routers, limit = o.routers or 0, o.hop_limit or 0
    budget = f"hop limit {limit} allows {plural(limit - 1, 'router')}"
    if o.access is Access.TOKEN:
        if o.receiver != o.node:
            parts.append(f"token reached {o.receiver} across {plural(routers, 'router')} "
                         f"({budget}); {o.receiver} relayed it with a fresh TTL")
        else:
            parts.append(f"token arrived across {plural(routers, 'router')} ({budget})")
    elif o.dropped_at:
        where = f" on its way to {o.receiver}" if o.receiver != o.node else ""
        parts.append(f"token response dropped at {o.dropped_at}{where}: TTL exceeded "
                     f"({budget}, the path has {routers})")
    elif refused:
        parts.append(refused)
    said = fallback(o)
    if said:
        parts.append(said)
    return "; ".join(parts)
