"""A change as the user makes it, in their own file's words: the product's
directive (hopsim.products), the line of the settings file a hop limit or
http_tokens came from (as a patch), or AWS's own metadata option.

`hopsim fix` and `hopsim explain` find changes in hopsim's keys (`--set
nginx.adds_xff=true`); this module says what that is in nginx.conf, in the
launch template or in the compose file, so a finding can be acted on without
reading hopsim's docs.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopsim.imds import IPV4_ENDPOINT
from hopsim.products import PRODUCTS, Setup
from hopsim.topology import Topology
from hopsim.topology.reader import dotted

# AWS's names for the instance settings hopsim calls hop_limit and http_tokens.
AWS_OPTIONS = {"hop_limit": "HttpPutResponseHopLimit", "http_tokens": "HttpTokens"}
CLI_OPTIONS = {"hop_limit": "--http-put-response-hop-limit", "http_tokens": "--http-tokens"}


@dataclass(frozen=True)
class Words:
    """One change in the user's own words."""

    text: str  # the line(s) to write: a directive, an option, a file's new line
    where: str  # where they go: "in the location block ... (nginx.conf)", "plan.tf:10"
    source: str = ""  # the documentation that says so
    patch: str = ""  # a unified diff of the file the setting came from, when known
    setup: Setup | None = None  # the product whose directive it is

    def line(self) -> str:
        """The change on one line, for reports."""
        text = self.text.replace("\n", "; ")
        return f"{text}  [{self.where}]" if text else self.where


def setup_of(topology: Topology, node: str) -> Setup | None:
    """The product a relay node is run as, when it names one."""
    spec = topology.nodes[node]
    if spec.product is None or spec.product not in PRODUCTS:
        return None
    return PRODUCTS[spec.product].setup(spec.mode, spec.kind)


def for_node(topology: Topology, node: str, key: str, value: Any) -> Words | None:
    """A node key's change in the words of the system that makes it: the
    product's directive where the node names a product that has one, a filter
    rule as iptables writes it, blocking as a blackhole route; a product
    without a directive says so; None when hopsim's key is all there is (a
    relay that names no product)."""
    setup = setup_of(topology, node)
    directive = setup.directive(key, value) if setup is not None else None
    if directive is not None:
        return Words(directive.written(value), directive.where, directive.source, setup=setup)
    if key == "filters" and isinstance(value, dict):
        return _filter_rule(topology, node, value)
    if key == "block_imds" and value is True:
        return Words(f"ip route add blackhole {IPV4_ENDPOINT}/32",
                     f"in {node}'s own network namespace, before its workload starts "
                     "(or a policy that denies its egress to 169.254.169.254/32: a "
                     "Kubernetes NetworkPolicy, ECS_AWSVPC_BLOCK_IMDS for awsvpc tasks)",
                     "ip-route(8): blackhole routes discard packets")
    if setup is None:
        return None
    return Words("", f"{setup.label} has no directive for {key}: {_no_directive(key)}",
                 setup=setup)


def _filter_rule(topology: Topology, node: str, rule: dict[str, Any]) -> Words:
    """A filter rule of hopsim's (forward or output, to imds) as iptables writes it."""
    chain = str(rule.get("chain", "forward")).upper()
    parts = [f"iptables -I {chain}"]
    source = rule.get("from")
    if source and chain == "FORWARD":
        parts.append(f"-i <{node}'s interface towards {source}>")
    if rule.get("owner"):  # the sockets a relay or a rootless user's stack opens
        parts.append(f"-m owner --uid-owner <the user {rule['owner']} runs as>")
    parts += [f"-d {IPV4_ENDPOINT}/32", "-j", str(rule.get("action", "drop")).upper()]
    where = f"on {node}, in the user data that boots it"
    documented = "iptables(8)"
    spec = topology.nodes[node]
    if spec.kind == "host" and chain == "FORWARD" and spec.masquerade:
        # a masquerading host is how Docker's engine is modelled
        where += " (on a Docker host: the DOCKER-USER chain, which Docker leaves to you)"
        documented += "; Docker docs, Packet filtering and firewalls: DOCKER-USER"
    return Words(" ".join(parts), where, documented)


def _no_directive(key: str) -> str:
    if key == "methods":
        return "it relays every method; remove it from the path, or filter its traffic"
    return "the change is not one it can make"


def for_setting(topology: Topology, key: str, value: Any) -> Words:
    """An instance setting's change: a patch to the line of the settings file
    it came from (--settings), else AWS's own metadata option."""
    for imds in topology.imds_nodes:
        source = topology.sources.get(dotted(("nodes", imds, key)))
        if source is None:
            continue
        file, line = source
        patched = _patch_setting(file, line, key, value)
        if patched:
            return Words(patched[1], f"{file}:{line}", patch=patched[0])
    option = AWS_OPTIONS.get(key)
    if option is None:
        return Words("", "the instance's metadata options")
    return Words(f"{option}: {value}",
                 "the instance's metadata options: the launch template's MetadataOptions, "
                 f"or aws ec2 modify-instance-metadata-options {CLI_OPTIONS[key]} {value}; "
                 "give the template, node class or plan with --settings for its line")


# A settings line: `key = value` (HCL), `key: value` (YAML), `"key": "value",` (JSON).
_VALUE = re.compile(r"""^\s*"?[A-Za-z_][A-Za-z0-9_]*"?\s*[:=]\s*["']?(?P<value>[^"',\s#}]+)""")


def _patch_setting(file: str, line: int, key: str, value: Any) -> tuple[str, str] | None:
    """The settings file with the setting's line written anew: (unified diff,
    the new line), or None when the line cannot say the value (eksctl has no
    hop limit but 1 or 2)."""
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return None
    if not 0 < line <= len(lines):
        return None
    row = lines[line - 1]
    found = _VALUE.match(row)
    if found is None:
        return None
    written = str(value)
    if re.match(r"\s*disable(PodIMDS|IMDSv1)\s*:", row):  # eksctl: a switch, not a value
        if (key, value) not in (("hop_limit", 1), ("http_tokens", "required")):
            return None
        written = "true"
    new = row[:found.start("value")] + written + row[found.end("value"):]
    if new == row:
        return None
    changed = [*lines[:line - 1], new, *lines[line:]]
    # a last line without its newline would run into the diff's next line
    before, after = ([*rows[:-1], rows[-1].rstrip("\n") + "\n"] for rows in (lines, changed))
    diff = "".join(difflib.unified_diff(before, after, f"a/{file}", f"b/{file}"))
    return diff, new.strip()


def declaration(topology: Topology, name: str) -> str | None:
    """For an imported design's untrusted-by-default principal: how its file
    declares it a workload, at its line (a statement that it is meant to hold
    the role, not a fix of the leak); None for any other principal."""
    if name not in topology.undeclared:
        return None
    from hopsim import importers
    from hopsim.importers.design import DECLARING

    reader = importers.recognise(topology.file)
    if reader is None:
        return None
    line = topology.line_of("nodes", name)
    at = f"{topology.file}:{line}" if line else topology.file
    return f"add {DECLARING[reader.__name__.rsplit('.', 1)[-1]]} ({at})"
