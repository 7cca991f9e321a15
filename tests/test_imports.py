"""A command imports what it uses: no scapy where no packet is built, the CLI's
command groups on demand (issue 23: imports were a fifth of a fleet's sweep)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click
import pytest
from builders import TOPOLOGIES

from hopsim.cli import commands as cli

LOADED = """\
import sys
from hopsim.cli import main
try:
    main(sys.argv[2:], standalone_mode=False)
except SystemExit:
    pass
import json
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
"""


def loaded(tmp_path, *args: str) -> set[str]:
    """The modules a fresh process holds after running a hopsim command."""
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", LOADED, str(out), *args], capture_output=True,
                   env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"}, check=False)
    return set(json.loads(out.read_text()))


def _top(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} | {
        ".".join(name.split(".")[:2]) for name in modules if name.startswith("hopsim.")}


@pytest.mark.parametrize("command", [["check", "--hop-limit", "2"],
                                     ["sweep", "--hop-limits", "1-64"], ["validate"]])
def test_judging_a_file_loads_neither_scapy_nor_networkx_nor_other_groups(command, tmp_path):
    modules = _top(loaded(tmp_path, *command, str(TOPOLOGIES / "docker-bridge.yaml")))
    assert "hopsim.analysis" in modules or command == ["validate"]  # it did its work
    assert "hopsim.topology" in modules
    assert not modules & {"scapy", "networkx", "hopsim.emulate", "hopsim.draw",
                          "hopsim.demo", "hopsim.fix"}
    assert "multiprocessing" not in modules  # a run without --jobs starts no pool


def test_a_trace_with_pcap_loads_scapy(tmp_path):
    """The other side: where packets are built, scapy is there (the check above
    would pass if nothing were ever loaded)."""
    pcap = tmp_path / "app.pcap"
    modules = _top(loaded(tmp_path, "trace", str(TOPOLOGIES / "docker-bridge.yaml"),
                          "--from", "app", "--pcap", str(pcap)))
    assert "scapy" in modules and pcap.stat().st_size > 24


def test_every_command_of_every_group_is_listed_under_its_own_name():
    """The lazy table names every click command the group modules define,
    so none is forgotten (a new one would be missing from `hopsim --help`)."""
    defined = {}
    for module in ("check", "inspect", "teach", "emulate", "design"):
        names = vars(importlib.import_module(f"hopsim.cli.{module}"))
        commands = {attr: c for attr, c in names.items() if isinstance(c, click.Command)}
        inner = {id(c) for group in commands.values() if isinstance(group, click.Group)
                 for c in group.commands.values()}  # generate fleet, import ec2 ...
        defined |= {command.name: (module, attr) for attr, command in commands.items()
                    if id(command) not in inner and not attr.startswith("_")}
    assert {name: defined[name] for name in cli._COMMANDS} == cli._COMMANDS
    assert set(defined) == set(cli._COMMANDS)
    ctx = click.Context(cli.main)
    for name in cli.main.list_commands(ctx):
        assert cli.main.get_command(ctx, name).name == name


def test_a_run_with_jobs_loads_the_pool(tmp_path):
    """The other side of the check above: with --jobs 2 over two files there
    is a pool, and multiprocessing with it (where there are two CPUs: --jobs
    is capped to them)."""
    from hopsim.workers import cpus

    modules = _top(loaded(tmp_path, "check", "--jobs", "2", str(TOPOLOGIES / "docker-bridge.yaml"),
                          str(TOPOLOGIES / "open-nat.yaml")))
    assert "hopsim.analysis" in modules
    assert ("multiprocessing" in modules) == (cpus() >= 2)
