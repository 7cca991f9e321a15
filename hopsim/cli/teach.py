"""Teaching: demo, the guided show (hopsim.lesson makes it, report/player.py plays it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hopsim import lesson as teaching
from hopsim.cli import files
from hopsim.cli.files import BUNDLED
from hopsim.cli.options import Seconds, color_option, idle
from hopsim.cli.say import EXIT_BAD_INPUT, console
from hopsim.loader import load
from hopsim.report import player
from hopsim.topology import closest


@click.command()
@click.argument("scenario", required=False)
@click.option("--list", "list_scenarios", is_flag=True,
              help="List the scenarios, one line each, and exit.")
@click.option("--from", "principal", metavar="NODE",
              help="Follow this principal (default: a workload the hop limit changes, "
                   "else an attacker).")
@click.option("--auto", is_flag=True, help="Advance on a timer instead of on Enter.")
@click.option("--delay", type=Seconds(min=0), default=2.5, show_default=True,
              metavar="S", help="Seconds between steps with --auto.")
@color_option
def demo(scenario: str | None, list_scenarios: bool, principal: str | None, auto: bool,
         delay: float) -> None:
    """A guided show: one principal's token at hop limit 1, then at 2.

    SCENARIO is a bundled topology (default docker-bridge; see --list) or a
    topology file. Steps advance on Enter, or every S seconds with --auto.
    Without a terminal the show prints as plain text, for recording.

    Exit codes: 0 shown; 2 no such scenario or principal, or bad input.
    """
    ctx = click.get_current_context()
    if not auto:
        idle(ctx, ["delay"], "without --auto: steps advance on Enter")
    if list_scenarios:
        idle(ctx, ["principal", "auto", "delay"], "with --list")
    folder = BUNDLED if BUNDLED.is_dir() else Path.cwd() / "topologies"
    bundled = teaching.scenarios(folder) if folder.is_dir() else {}
    out = console()
    if list_scenarios:
        out.print(player.scenarios(out, [teaching.listing(load(f)) for f in bundled.values()]),
                  soft_wrap=True)
        return
    name = scenario or teaching.DEFAULT_SCENARIO
    if name not in bundled and not os.path.isfile(name):
        click.echo(f"error: demo: no scenario {name!r}{closest(name, bundled)}; "
                   "hopsim demo --list shows them", err=True)
        sys.exit(EXIT_BAD_INPUT)
    file = str(bundled.get(name, name))
    topology = files.one_topology(file, (), None, None)
    if principal:
        topology, principal = files.principal(topology, file, principal)
    player.present(out, teaching.build(topology, principal), player.pacing(out, auto, delay))
