"""Looking into one topology: show, trace, explain and draw."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hopsim import draw as drawing
from hopsim import engine, packets
from hopsim.cli import files
from hopsim.cli.options import color_option, quiet_option, view_format, what_if_options
from hopsim.cli.say import EXIT_BAD_INPUT, console, say, setting, write
from hopsim.explain import explain as explain_principal
from hopsim.report import json as json_report
from hopsim.report import table
from hopsim.routing import Router


@click.command()
@click.argument("file", type=click.Path())
@what_if_options
@view_format
@color_option
def show(file: str, hop_limit: int | None, http_tokens: str | None,
         sets: tuple[str, ...], output_format: str) -> None:
    """Show a topology: nodes, addresses, links and each principal's route.

    Exit codes: 0 shown; 2 bad input.
    """
    topology = files.one_topology(file, sets, hop_limit, http_tokens)
    if output_format == "json":
        router = Router(topology)
        click.echo(json_report.topology_view(topology, map(router.route, topology.principals)),
                   nl=False)
        return
    out = console()
    out.print(table.show(out, topology))


@click.command()
@click.argument("file", type=click.Path())
@click.option("--from", "principal", required=True, metavar="NODE",
              help="The principal whose exchange to trace.")
@click.option("--family", type=click.Choice(["4", "6"]), default=None,
              help="IP version (default: the node's family, else 4).")
@click.option("--pcap", type=click.Path(dir_okay=False, writable=True),
              help="Also write every packet, at every hop, to this pcap file.")
@what_if_options
@view_format
@quiet_option
@color_option
def trace(file: str, principal: str, family: str | None, pcap: str | None,
          hop_limit: int | None, http_tokens: str | None, sets: tuple[str, ...],
          output_format: str) -> None:
    """Trace one principal's exchange: every packet, hop by hop, with its TTL.

    Exit codes: 0 whatever the outcome, a leak included: trace shows what
    happens, check judges it; 2 bad input.
    """
    topology = files.one_topology(file, sets, hop_limit, http_tokens)
    topology, principal = files.principal(topology, file, principal)
    exchange = engine.play(topology, principal, family=int(family) if family else None,
                           record=True)
    if output_format == "json":
        click.echo(json_report.trace(topology, exchange), nl=False)
    elif not setting("quiet"):
        out = console()
        out.print(table.trace(out, topology, exchange))
    if pcap:
        write(pcap, packets.pcap_bytes(exchange.packets))
        say(f"wrote {len(exchange.packets)} packets to {pcap}",
            err=output_format == "json")


@click.command()
@click.argument("file", type=click.Path())
@click.option("--from", "principal", metavar="NODE",
              help="Explain one principal (default: every principal).")
@what_if_options
@view_format
@color_option
def explain(file: str, principal: str | None, hop_limit: int | None, http_tokens: str | None,
            sets: tuple[str, ...], output_format: str) -> None:
    """Explain each principal's result: the defence that stopped it or the gap
    that let it through, and the changes that would fix it (each one checked
    by simulating it; none loosens a control).

    Exit codes: 0 whatever the outcomes, leaks included: explain says why, check
    judges; 2 bad input.
    """
    topology = files.one_topology(file, sets, hop_limit, http_tokens)
    if principal:
        topology, principal = files.principal(topology, file, principal)
    names = [principal] if principal else topology.principals
    router = Router(topology)
    items = [explain_principal(topology, n, router) for n in names]
    if output_format == "json":
        click.echo(json_report.explanations(topology, items), nl=False)
        return
    out = console()
    out.print(table.explanations(out, topology, items))


@click.command()
@click.argument("file", type=click.Path())
@click.option("--from", "principal", metavar="NODE",
              help="Draw this principal's token response (default: every principal's); "
                   "the page follows it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE: .svg, .png, .mmd or .html (default: stdout).")
@click.option("--format", "picture_format", type=click.Choice(drawing.FORMATS),
              help="Picture format (default: from FILE's suffix, else svg).")
@what_if_options
@quiet_option
def draw(file: str, principal: str | None, output: str | None, picture_format: str | None,
         hop_limit: int | None, http_tokens: str | None, sets: tuple[str, ...]) -> None:
    """Draw a topology: the token response's TTL on each link, the drops,
    leaking attackers and starved workloads, laid out from IMDS outwards.

    --format html writes a teaching page instead: one offline HTML file with
    the hop limit on a slider, an http_tokens switch and a play button that
    shows the answer to the token request hop by hop.

    Exit codes: 0 drawn, whatever it shows; 2 bad input.
    """
    suffix = Path(output).suffix.lower() if output else ""
    if picture_format is None and output:
        picture_format = drawing.SUFFIXES.get(suffix)
        if picture_format is None:
            raise click.BadParameter(f"cannot tell the format of {output!r}: use .svg, .png, "
                                     ".mmd or .html, or --format", param_hint="-o")
    picture_format = picture_format or "svg"
    if picture_format == "png" and not output:
        raise click.UsageError("PNG needs a file: -o FILE.png")
    topology = files.one_topology(file, sets, hop_limit, http_tokens)
    if principal:
        topology, principal = files.principal(topology, file, principal)
    try:
        data = drawing.render(topology, picture_format, [principal] if principal else None)
    except drawing.png.MissingPillow as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if output:
        write(output, data)
        say(f"wrote {output}")
    else:
        click.echo(data.decode(), nl=False)
