"""Changing and making designs: fix and diff (what-if beyond the hop limit),
import (real settings, compose files, manifests, task definitions), generate
(fleets) and schema (for editors)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from hopsim import analysis, importers, settings
from hopsim import generate as fleets
from hopsim.cli import files
from hopsim.cli.options import color_option, idle, quiet_option, what_if_options
from hopsim.cli.say import (
    EXIT_BAD_INPUT,
    EXIT_FINDING,
    EXIT_OK,
    console,
    note,
    report_problems,
    say,
    write,
)
from hopsim.imds import HTTP_TOKENS, MAX_HOP_LIMIT, MIN_HOP_LIMIT
from hopsim.loader import STDIN
from hopsim.report.wording import plural
from hopsim.topology import MAX_REPLICAS, TopologyError
from hopsim.topology import schema as topology_schema


@click.group("import")
def import_settings() -> None:
    """Write real instance settings into a topology file (terraform, ec2), or
    turn a compose file, Kubernetes manifests or ECS task definitions into one
    (compose, kubernetes, ecs).

    Each imds node that names its instance (instance: aws_instance.web, or an
    instance id) gets that instance's hop limit, http_tokens, http_endpoint and
    IPv6 setting; comments and the rest of the file are kept. Check and sweep
    take --settings to apply the same without rewriting.
    """


@import_settings.command("terraform")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.argument("topology", type=click.Path(dir_okay=False))
@quiet_option
def import_terraform(plan: str, topology: str) -> None:
    """From `terraform show -json` output (a plan or a state): aws_instance and
    aws_launch_template metadata_options, with AWS's defaults for what is unset.

    Exit codes: 0 written (or nothing to change); 2 bad input.
    """
    _import("terraform", plan, topology)


@import_settings.command("ec2")
@click.argument("describe", type=click.Path(dir_okay=False))
@click.argument("topology", type=click.Path(dir_okay=False))
@quiet_option
def import_ec2(describe: str, topology: str) -> None:
    """From `aws ec2 describe-instances` output (MetadataOptions).

    Exit codes: 0 written (or nothing to change); 2 bad input.
    """
    _import("ec2", describe, topology)


def _import_design(source: str, file: str, output: str | None) -> None:
    """A compose file, manifest or task definition as a topology file."""
    try:
        design = importers.load(file, reader=importers.READERS[source]).design
        text = importers.dump(design, file)
        importers.check_dump(text, file)
    except TopologyError as error:
        report_problems(error.problems)
        sys.exit(EXIT_BAD_INPUT)
    for remark in design.notes:
        note(files.located(file, remark))
    if output:
        write(output, [text])
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def _import_command(source: str, what: str) -> None:
    @import_settings.command(source, help=f"{what} as a topology file, for editing: each "
                             "node with a comment saying what it stands for and where it "
                             "is written (docs/importers.md).")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
                  help="Write to FILE instead of stdout.")
    def command(file: str, output: str | None) -> None:
        _import_design(source, file, output)


_import_command("compose", "A Docker Compose file")
_import_command("kubernetes", "Kubernetes manifests (multi-document YAML)")
_import_command("ecs", "ECS task definitions (JSON, CloudFormation or Terraform)")


def _import(source: str, settings_file: str, file: str) -> None:
    topology = files.one_topology(file, (), None, None)
    try:
        instances = settings.read(settings_file, source)
    except settings.SettingsError as error:
        click.echo(f"error: {settings_file}: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if not settings.names_instances(topology):
        click.echo(f"error: {file}: no imds node names an instance: add `instance: "
                   "ADDRESS_OR_ID` to an imds node", err=True)
        sys.exit(EXIT_BAD_INPUT)
    applied, problems = settings.match(topology, instances)
    if problems:
        report_problems(problems)
        sys.exit(EXIT_BAD_INPUT)
    text = Path(file).read_text(encoding="utf-8")
    try:
        new = settings.rewrite(text, topology, applied)
    except TopologyError as error:
        click.echo(f"error: {file}: cannot write the settings into this file "
                   f"({error.problems[0].message}); use --settings instead", err=True)
        sys.exit(EXIT_BAD_INPUT)
    for a in applied:
        say(settings.describe(file, a))
    if new != text:
        write(file, [new])


@click.command()
def schema() -> None:
    """Print the JSON Schema of topology files, for editors and other tools.

    Save it (hopsim schema > hopsim.schema.json) and start a topology file with
    "# yaml-language-server: $schema=hopsim.schema.json" to get completion and
    checks as you type. Exit code 0.
    """
    click.echo(json.dumps(topology_schema.json_schema(), indent=2))


# Nodes written one by one: past ~500,000 the file outgrows the loader's limits
# (64 MiB, 2,000,000 values), so `validate` would refuse what `generate` wrote.
MAX_WRITTEN_FLEET = 400_000


@click.group()
def generate() -> None:
    """Generate topologies: fleets at scale, for benchmarks and CI designs."""


@generate.command("fleet")
@click.option("--instances", type=click.IntRange(1, MAX_REPLICAS), required=True,
              help="Instances (units): docker hosts, k8s nodes, NAT instances, proxies ...")
@click.option("--containers", type=click.IntRange(1, MAX_REPLICAS), required=True,
              help="About this many containers, pods or clients per instance.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="The same seed gives the same fleet, byte for byte.")
@click.option("--compact", is_flag=True,
              help="Write units with counts and replicas: one unit per shape of instance, "
                   "a few lines whatever the size (the seed plays no part).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE (JSON if it ends in .json, else YAML) instead of stdout.")
@quiet_option
def generate_fleet(instances: int, containers: int, seed: int, compact: bool,
                   output: str | None) -> None:
    """A heterogeneous fleet as one topology file, deterministic for a seed.

    Exit codes: 0 written; 2 usage, or FILE cannot be written.
    """
    if compact:
        idle(click.get_current_context(), ["seed"], "with --compact, which draws nothing")
    elif instances * containers > MAX_WRITTEN_FLEET:
        raise click.UsageError(
            f"{instances:,} instances of {containers:,} containers is more than the "
            f"{MAX_WRITTEN_FLEET:,} nodes a topology file can hold: use --compact")
    document = (fleets.compact_fleet(instances, containers) if compact else
                fleets.fleet(instances, containers, seed))
    text = fleets.dumps(document, "json" if output and output.endswith(".json") else "yaml")
    if not output:
        click.echo(text, nl=False)
        return
    write(output, [text])
    if compact:
        say(f"wrote {len(document['units'])} units standing for "
            f"{fleets.copies(document):,} nodes to {output}", err=True)
    else:
        say(f"wrote {len(document['nodes'])} nodes, {len(document['links'])} links "
            f"to {output}", err=True)


def _what_if_name(file: str, hop_limit: int | None, http_tokens: str | None,
                  sets: Sequence[str]) -> str:
    """A side of a diff as a person would write it: the file and its what-if."""
    parts = [file]
    parts += [f"--hop-limit {hop_limit}"] if hop_limit is not None else []
    parts += [f"--http-tokens {http_tokens}"] if http_tokens is not None else []
    parts += [f"--set {s}" for s in sets]
    return " ".join(parts)


@click.command(name="diff")
@click.argument("before", type=click.Path())
@click.argument("after", type=click.Path(), required=False)
@what_if_options
@click.option("--then-hop-limit", type=click.IntRange(MIN_HOP_LIMIT, MAX_HOP_LIMIT),
              help="AFTER's hop limit (with one file: the what-if to compare with).")
@click.option("--then-http-tokens", type=click.Choice(HTTP_TOKENS),
              help="AFTER's http_tokens.")
@click.option("--then-set", "then_sets", multiple=True, metavar="NODE.KEY=VALUE",
              help="A node key changed on AFTER only.")
@click.option("--format", "diff_format", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True,
              help="table for people, json for machines, markdown for a PR comment.")
@quiet_option
@color_option
def diff_command(before: str, after: str | None, hop_limit: int | None,
                 http_tokens: str | None, sets: tuple[str, ...], then_hop_limit: int | None,
                 then_http_tokens: str | None, then_sets: tuple[str, ...],
                 diff_format: str) -> None:
    """The principals whose outcome changes between two designs.

    BEFORE and AFTER are two topology files (AFTER defaults to BEFORE), each
    checked at its configured hop limit. --hop-limit, --http-tokens and --set
    change both; --then-hop-limit, --then-http-tokens and --then-set change
    AFTER only: `hopsim diff FILE --then-hop-limit 2` is what raising the hop
    limit would change.

    Exit codes: 0 no principal changes; 1 some do; 2 bad input.
    """
    from hopsim import diff as diffs

    after = after or before
    if after == before and not (then_hop_limit or then_http_tokens or then_sets):
        raise click.UsageError("one file and no --then-* option: nothing to compare")
    old = files.one_topology(before, sets, hop_limit, http_tokens)
    new = files.one_topology(after, (*sets, *then_sets), then_hop_limit or hop_limit,
                             then_http_tokens or http_tokens)
    found = diffs.diff(analysis.check(old), analysis.check(new),
                       _what_if_name(before, hop_limit, http_tokens, sets),
                       _what_if_name(after, then_hop_limit or hop_limit,
                                     then_http_tokens or http_tokens, (*sets, *then_sets)))
    if diff_format == "json":
        click.echo(found.to_json(), nl=False)
    elif diff_format == "markdown":
        click.echo(found.to_markdown(), nl=False)
    else:
        out = console()
        if out.is_terminal:
            out.print(diffs.table(out, found))
        else:
            click.echo(found.to_text(), nl=False)
    sys.exit(EXIT_FINDING if found.changes else EXIT_OK)


@click.command(name="fix")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--max-changes", type=click.IntRange(1, 4), default=3, show_default=True,
              help="The most changes a fix may make.")
@click.option("--top", type=click.IntRange(1, 100), default=5, show_default=True,
              help="How many fixes to print.")
@click.option("--format", "fix_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for machines.")
@quiet_option
def fix_command(file: str, max_changes: int, top: int, fix_format: str) -> None:
    """The smallest sets of changes that make every verdict ok, each proved
    by simulating it: hop limit, http_tokens, relay settings, filter rules
    and blocking routes (docs/mitigations.md). Each fix is printed as
    options for check (--hop-limit, --http-tokens, --set) and the best one
    as a patch to FILE.

    Exit codes: 0 nothing to fix, or a fix found; 1 nothing hopsim knows
    works; 2 bad input.
    """
    from hopsim import fix as fixes

    if file == STDIN:
        raise click.BadParameter("fix reads FILE again for each change: give a file",
                                 param_hint="FILE")
    topology = files.one_topology(file, (), None, None)
    found = fixes.search(file, topology, max_changes=max_changes)
    result = found.before.results[0]
    shown = found.fixes[:top]
    if fix_format == "json":
        click.echo(json.dumps({
            "file": file, "verdict": result.verdict.value, "reason": result.reason,
            "tried": found.tried,
            "fixes": [{"changes": [c.describe() for c in f.changes],
                       "options": f.options(topology),
                       "verdict": f.report.results[0].verdict.value} for f in shown],
            "patch": fixes.patch(file, topology, shown[0]) if shown else None,
        }, indent=2))
    elif not found.needed:
        click.echo(f"{file}: {result.verdict.value}: nothing to fix")
    elif not shown:
        click.echo(f"{file}: {result.verdict.value} ({result.reason})")
        click.echo(f"no fix of up to {max_changes} changes among the {len(found.candidates)} "
                   f"hopsim knows ({found.tried} sets simulated) makes every verdict ok")
    else:
        size = len(shown[0].changes)
        click.echo(f"{file}: {result.verdict.value} ({result.reason})")
        click.echo(f"{plural(len(found.fixes), 'fix', 'fixes')} of {plural(size, 'change')} "
                   f"({found.tried} sets simulated), "
                   "each proved ok by simulation:")
        for i, f in enumerate(shown, 1):
            click.echo(f"{i:2}. {f.options(topology)}")
            for change in f.changes:
                click.echo(f"      {change.describe()}")
        click.echo(f"\nthe first as a patch to {file}:")
        click.echo(fixes.patch(file, topology, shown[0]), nl=False)
    sys.exit(EXIT_FINDING if found.needed and not shown else EXIT_OK)
