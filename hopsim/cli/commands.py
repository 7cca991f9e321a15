"""The `hopsim` command group: every command of hopsim/cli under one name,
each ending the same way on a signal."""

from __future__ import annotations

import importlib
from typing import Any

import click

from hopsim import __version__, interrupts

# Each command, by name: its group's module and the function click made of it.
# A command imports its group's module when it runs (or when help lists it), so
# `hopsim check` does not load the emulator, the importers or the drawings.
_COMMANDS = {
    "check": ("check", "check"), "sweep": ("check", "sweep"),
    "validate": ("check", "validate"),
    "show": ("inspect", "show"), "trace": ("inspect", "trace"),
    "explain": ("inspect", "explain"), "draw": ("inspect", "draw"),
    "demo": ("teach", "demo"),
    "emulate": ("emulate", "emulate"), "verify": ("emulate", "verify"),
    "products": ("emulate", "products"),
    "fix": ("design", "fix_command"), "diff": ("design", "diff_command"),
    "import": ("design", "import_settings"), "generate": ("design", "generate"),
    "schema": ("design", "schema"),
}


class _Main(click.Group):
    """The command group, ending every command the same way on a signal
    (hopsim.interrupts): one line, exit 130 on SIGINT, 143 on SIGTERM; its
    commands loaded on demand (_COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module, name = _COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"hopsim.cli.{module}"), name)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and self.get_command(ctx, args[0]) is None:
            for name in _COMMANDS:  # click suggests the names it holds: all of them
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

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


__all__ = ["main"]
