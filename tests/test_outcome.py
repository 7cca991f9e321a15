"""The outcome vocabulary: the verdict rule and the refusal-cause rule, each
written once (hopsim.outcome), and everything that judges or explains an
outcome reading them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hopsim import analysis
from hopsim.http import Request
from hopsim.imds import TOKEN_PATH, TTL_HEADER, XFF_HEADER, token_request
from hopsim.outcome import (
    Access,
    Cause,
    Outcome,
    Role,
    Verdict,
    bad,
    refusal_cause,
    verdict,
)
from hopsim.report import wording

PACKAGE = Path(analysis.__file__).parent


@pytest.mark.parametrize("role,access,expected", [
    # An attacker must hold nothing: a token or IMDSv1 credentials is a leak.
    (Role.ATTACKER, Access.TOKEN, True), (Role.ATTACKER, Access.CREDENTIALS, True),
    (Role.ATTACKER, Access.NONE, False),
    # A workload must hold a token: IMDSv1 credentials do not count (the
    # SDK waited out a timeout first, and http_tokens: required ends them).
    (Role.WORKLOAD, Access.TOKEN, False), (Role.WORKLOAD, Access.CREDENTIALS, True),
    (Role.WORKLOAD, Access.NONE, True),
    # A principal without a role is never bad, whatever it holds.
    (None, Access.TOKEN, False), (None, Access.NONE, False),
    ("attacker", Access.TOKEN, True),  # as a topology file spells it
])
def test_the_verdict_rule(role, access, expected):
    assert bad(role, access) is expected


def test_a_leak_outranks_a_starved_workload():
    assert verdict({Role.ATTACKER, Role.WORKLOAD}) is Verdict.LEAK
    assert verdict({Role.WORKLOAD}) is Verdict.BROKEN
    assert verdict(set()) is Verdict.OK


outcomes = st.builds(Outcome, node=st.sampled_from(["a", "b", "c", "d"]),
                     role=st.sampled_from([Role.ATTACKER, Role.WORKLOAD, None]),
                     family=st.just(4), access=st.sampled_from(list(Access)))


@given(st.lists(outcomes, max_size=6))
def test_judge_and_the_words_read_the_one_rule(found):
    expected = (Verdict.LEAK if any(o.role == "attacker" and o.access is not Access.NONE
                                    for o in found)
                else Verdict.BROKEN if any(o.role == "workload" and o.access is not Access.TOKEN
                                           for o in found)
                else Verdict.OK)
    assert analysis.judge(found)[0] is expected
    for o in found:
        assert (wording.finding(o.role, o.access) is not None) is o.bad


def _role_literal_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing something with the string 'attacker' or 'workload'."""
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Compare)
            and any(isinstance(c, ast.Constant) and c.value in ("attacker", "workload")
                    for c in [node.left, *node.comparators])]


def test_no_module_writes_the_verdict_rule_again():
    found = {str(p.relative_to(PACKAGE)): lines for p in sorted(PACKAGE.rglob("*.py"))
             if (lines := _role_literal_comparisons(ast.parse(p.read_text())))}
    assert found == {}


def arrived(*headers: tuple[str, str], method: str = "PUT") -> Request:
    return Request(method, TOKEN_PATH, headers)


@pytest.mark.parametrize("status,refused,request_,disabled,expected", [
    (None, False, None, False, Cause.OTHER),  # no answer came
    (405, True, None, False, Cause.METHOD),  # a relay refused the PUT itself
    (403, True, None, False, Cause.METHOD),  # ... with its own status
    (405, False, arrived(method="GET"), False, Cause.METHOD),  # an SSRF app's GET
    (403, False, token_request(), True, Cause.DISABLED),
    (403, False, arrived((TTL_HEADER, "21600"), (XFF_HEADER, "10.0.0.1")), False, Cause.XFF),
    (400, False, arrived(), False, Cause.TTL_HEADER),  # a relay dropped the ttl header
    (502, False, None, False, Cause.OTHER),  # a relay's upstream failed: no refusal
    (401, False, token_request(), False, Cause.OTHER),
])
def test_the_refusal_cause_rule(status, refused, request_, disabled, expected):
    assert refusal_cause(status, refused=refused, arrived=request_,
                         disabled=disabled) is expected


PRODUCED = re.compile(r"(return|cause=|\"cause\":)\s*Cause\.(METHOD|XFF|TTL_HEADER|DISABLED)\b")


def test_no_module_works_out_a_refusal_cause_again():
    # The walk and the kernel both call refusal_cause: none reads a cause off
    # an answer's wording.
    found = [f"{p.relative_to(PACKAGE)}:{i}" for p in sorted(PACKAGE.rglob("*.py"))
             if p.name != "outcome.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if PRODUCED.search(line)]
    assert found == []


def test_no_module_spells_a_role_again():
    # Issue 25: importers and the survey kept their own "attacker"; a role
    # is outcome.Role wherever it is written (the value where plain text is due).
    found = [f"{p.relative_to(PACKAGE)}:{node.lineno}" for p in sorted(PACKAGE.rglob("*.py"))
             if p.name != "outcome.py" for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.Constant) and node.value in set(Role)]
    assert found == []
