"""Every product, measured: `hopsim products --verify`.

Each product in each mode is run for real (its Debian binary, its defaults
and the one misconfiguration that opens it) on an instance, with an attacker
outside: the open-relay case of the article. One PUT for a token at hop
limit 1, then the IMDSv1 fallback GET. What IMDS received (method, headers)
is compared with what the attacker sent; the attacker's outcome and the TTL
of the answer it saw are read on its side; and each is compared with what
hopsim's model of the product (hopsim.products) predicts for the same
topology.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from hopsim import engine, imds
from hopsim.emulate import build, netns
from hopsim.emulate import products as real
from hopsim.emulate.run import DEFAULT_TIMEOUT, Kernel
from hopsim.interrupts import held, raise_if_stopped
from hopsim.loader import parse
from hopsim.outcome import Access, Role
from hopsim.products import Setup, setups
from hopsim.topology import Topology

ATTACKER = Role.ATTACKER.value  # the outside client: a node named after its role
_numbers = itertools.count()
# Framing headers every hop rewrites: not what a product decides to add or drop.
_FRAMING = {"host", "content-length", "connection"}


def topology(setup: Setup) -> Topology:
    """imds - instance[relay] - attacker: the product open to the internet on
    the instance, as in the article."""
    mode = f", mode: {setup.mode}" if setup.mode else ""
    return parse(f"""
name: {setup.product}{'-' + setup.mode if setup.mode else ''}
description: "{setup.title}, open to an attacker on the internet"
imds: {{hop_limit: 1, http_tokens: required}}
nodes:
  imds: {{kind: imds}}
  instance: {{kind: host, role: {Role.WORKLOAD}}}
  relay: {{kind: {setup.kind}, runs_on: instance, product: {setup.product}{mode}}}
  {ATTACKER}: {{kind: client, role: {Role.ATTACKER}}}
links:
  - [imds, instance]
  - [instance, {ATTACKER}]
""", f"<{setup.label}>")


@dataclass(frozen=True)
class Measured:
    """One product in one mode, as the real binary behaved."""

    setup: Setup
    method_at_imds: str | None  # the method IMDS got for the attacker's PUT (None: nothing)
    added: tuple[str, ...]  # header names IMDS got that the attacker did not send
    dropped: tuple[str, ...]  # header names the attacker sent that IMDS did not get
    access: Access  # what the attacker ended with
    status: int | None  # the status of the answer to its PUT
    answer_ttl: int | None  # the IP TTL of that answer where the attacker received it
    predicted: engine.Outcome  # what hopsim's model says for the attacker

    @property
    def differences(self) -> list[str]:
        """Where the binary and hopsim's model of it disagree."""
        policy, out = self.setup.policy, []
        model_method = None if not policy.allows("PUT") else (policy.sends_method or "PUT")
        if model_method != self.method_at_imds:
            out.append(f"the model has {model_method or 'nothing'} reach IMDS")
        names = {n.lower() for n in self.added}
        if self.method_at_imds and policy.adds_xff != (imds.XFF_HEADER.lower() in names):
            out.append(f"the model {'adds' if policy.adds_xff else 'adds no'} X-Forwarded-For")
        ttl = imds.TTL_HEADER.lower() in {n.lower() for n in self.dropped}
        if self.method_at_imds and policy.forwards_headers == ttl:
            out.append(f"the model {'passes' if policy.forwards_headers else 'drops'} the "
                       "ttl header")
        if self.predicted.access is not self.access:
            out.append(f"the model gives the attacker {self.predicted.access.value}")
        return out


def _names(raw_names: Iterable[str]) -> dict[str, str]:
    return {n.lower(): n for n in raw_names if n.lower() not in _FRAMING}


async def _probe(kernel: Kernel) -> tuple:
    await kernel.start()
    try:
        session = await kernel.session(ATTACKER)
        await asyncio.sleep(0.05)  # the taps read what is still queued
        return session, kernel.received(session.put.flow)
    finally:
        await kernel.stop()


def measure(setup: Setup, timeout: float = DEFAULT_TIMEOUT) -> Measured:
    """Run `setup`'s product for real and measure the attacker's exchange."""
    topo = topology(setup)
    plan = build.plan(topo, f"{netns.run_prefix()}p{next(_numbers)}-")
    relays = real.relays(plan)
    why = real.missing(relays)
    if why:
        raise real.ProductError(why)
    kernel = Kernel(plan, timeout, relays)
    try:
        netns.build(plan)
        raise_if_stopped()
        netns.wait_ready(plan)
        session, received = asyncio.run(_probe(kernel))
        raise_if_stopped()
    finally:
        with held():
            netns.delete_namespaces(netns.existing(plan.prefix))
            real.remove_directories(plan)
    put = session.put
    sent = imds.token_request()
    sent_names = _names(["Host", *(k for k, _ in sent.headers), "Content-Length"])
    got = _names(received.header_names()) if received else {}
    predicted = engine.play(topo, ATTACKER).outcome
    return Measured(
        setup,
        method_at_imds=received.request.method if received else None,
        added=tuple(sorted(got[n] for n in got.keys() - sent_names.keys())) if received else (),
        dropped=(tuple(sorted(sent_names[n] for n in sent_names.keys() - got.keys()))
                 if received else ()),
        access=session.access,
        status=put.response.status if put and put.response else None,
        answer_ttl=kernel.evidence.answer_ttl.get(put.flow.ports[0]) if put else None,
        predicted=predicted)


def survey(timeout: float = DEFAULT_TIMEOUT) -> list[Measured]:
    """Every product in every mode, measured."""
    return [measure(s, timeout) for s in setups()]
