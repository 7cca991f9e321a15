"""The `hopsim` command group: every command of hopsim/cli under one name,
each ending the same way on a signal."""

from __future__ import annotations

from typing import Any

import click

from hopsim import __version__, interrupts
from hopsim.cli import check, design, emulate, inspect, teach


class _Main(click.Group):
    """The command group, ending every command the same way on a signal
    (hopsim.interrupts): one line, exit 130 on SIGINT, 143 on SIGTERM."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with interrupts.stopping():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except interrupts.Stopped as stop:
            interrupts.leave(stop, f"stopped by {stop}")


@click.group(cls=_Main,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80})
@click.version_option(__version__, prog_name="hopsim")
def main() -> None:
    """Who gets the EC2 instance metadata (IMDSv2) token, hop by hop?

    hopsim plays the IMDSv2 exchange as real packets across a topology of
    hosts, containers, bridges, routers, NATs and L7 relays, and reports who
    gets the session token (and who must not but does) for a hop limit.
    """


for _command in (check.check, check.sweep, check.validate,
                 inspect.show, inspect.trace, inspect.explain, inspect.draw,
                 teach.demo,
                 emulate.emulate, emulate.verify, emulate.products,
                 design.fix_command, design.diff_command, design.import_settings,
                 design.generate, design.schema):
    main.add_command(_command)

__all__ = ["main"]
