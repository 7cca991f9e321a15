"""The `hopsim` command: parse arguments, call the library, render. No logic.

The group itself is commands.py; __main__.py starts it (`hopsim`, `python
-m hopsim.cli`), taking signals from its first instruction. One module per
group of commands, as click's own projects do:
  check.py    check, sweep, validate: judging files, every report format
  inspect.py  show, trace, explain, draw: looking into one topology
  teach.py    demo
  emulate.py  emulate, verify, products: the kernel
  design.py   fix, diff, import, generate, schema: changing and making designs
shared by them: options.py (options and their values), files.py (the files a
command reads), say.py (output, errors and exit codes: 0 fine, 1 a finding,
2 bad input or usage). Signals are hopsim.interrupts', the worker pool
hopsim.workers', output files hopsim.output's.
"""

from typing import Any

# `main` is imported on first use, so that the `hopsim` command (__main__.py)
# takes Ctrl-C before click, scapy and the commands are imported.


def __getattr__(name: str) -> Any:
    if name != "main":
        raise AttributeError(f"module 'hopsim.cli' has no attribute {name!r}")
    from hopsim.cli.commands import main

    globals()["main"] = main
    return main


__all__ = ["main"]
