"""Every output format of check and sweep, by name: one run, one document.

Each renderer reads the same Report objects; this only picks one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

from hopsim.analysis import Report
from hopsim.report import json as json_report
from hopsim.report import junit, markdown, sarif, table
from hopsim.topology import Problem

FORMATS = ("table", "json", "junit", "sarif", "markdown")


def render(output_format: str, command: str, reports: Sequence[Report],
           problems: Sequence[Problem], hop_limits: Sequence[int] = (),
           all_principals: bool = False) -> str:
    """The run as text in `output_format`; a table is plain ASCII at 80 columns."""
    return "".join(chunks(output_format, command, reports, problems, hop_limits,
                          all_principals))


def chunks(output_format: str, command: str, reports: Sequence[Report],
           problems: Sequence[Problem], hop_limits: Sequence[int] = (),
           all_principals: bool = False) -> Iterator[str]:
    """render(), in pieces to write as they come: JSON is made while it is
    written (every principal of a fleet's sweep, with all_principals, is
    100s of MB); the others come in one piece."""
    if output_format == "json":
        return json_report.chunks(command, reports, problems, all_principals)
    return iter((_whole(output_format, command, reports, problems, hop_limits),))


def _whole(output_format: str, command: str, reports: Sequence[Report],
           problems: Sequence[Problem], hop_limits: Sequence[int]) -> str:
    if output_format == "table":
        buffer = io.StringIO()
        out = table.console(buffer, force_terminal=False)
        out.print(table.sweep(out, reports, hop_limits) if command == "sweep"
                  else table.check(out, reports))
        return buffer.getvalue()
    if output_format == "junit":
        return junit.document(command, reports, problems)
    if output_format == "sarif":
        return sarif.document(command, reports, problems)
    if output_format == "markdown":
        return (markdown.sweep(reports, problems, hop_limits) if command == "sweep"
                else markdown.check(reports, problems))
    raise ValueError(f"unknown format {output_format!r}; expected one of {', '.join(FORMATS)}")
