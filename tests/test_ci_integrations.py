"""The pre-commit hook and the GitHub Action, exercised by running the commands
they run: hopsim installed from this tree into a fresh virtualenv, as
setup-python + pip (or pre-commit's python env) would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from builders import ROOT
from ci_helpers import SCHEMAS

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> dict[str, Path]:
    """The action's install step, run as GitHub runs it: the Python that
    setup-python set up (a fresh virtualenv here, as the job's own Python),
    the runner's temp folder, and the action's checkout of this tree."""
    here = tmp_path_factory.mktemp("action")
    # The action's checkout: this tree without what git ignores (pip builds in it).
    source = here / "hopsim"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", ".*_cache", ".hypothesis", "__pycache__"))
    python = here / "python"
    subprocess.run([sys.executable, "-m", "venv", str(python)], check=True)
    temp = here / "runner-temp"
    temp.mkdir()
    step = _step("Install hopsim")
    context = {"github.action_path": str(source), "runner.temp": str(temp),
               "steps.python.outputs.python-path": str(python / "bin" / "python")}
    installed = _run_step(step, python / "bin", context, cwd=here)
    assert installed.returncode == 0, installed.stderr
    return {"python": python / "bin" / "python", "temp": temp,
            "bin": temp / "hopsim-venv" / "bin"}


@pytest.fixture(scope="module")
def fresh_bin(runner) -> Path:
    """The bin/ of the virtualenv the action installed hopsim into."""
    assert (runner["bin"] / "hopsim").exists()
    return runner["bin"]


def test_the_action_leaves_the_callers_python_as_it_was(runner):
    # hopsim went into its own virtualenv in the runner's temp folder: the
    # job's Python, which later steps use, has no hopsim and no new packages.
    caller = subprocess.run([str(runner["python"]), "-c", "import hopsim"],
                            capture_output=True, text=True, cwd=runner["temp"])
    assert caller.returncode != 0 and "No module named 'hopsim'" in caller.stderr
    listed = subprocess.run([str(runner["python"]), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True)
    assert {p["name"] for p in json.loads(listed.stdout)} <= {"pip", "setuptools"}
    setup = _step("Set up Python")
    assert setup["with"]["update-environment"] is False  # setup-python leaves PATH alone


def _step(name: str) -> dict:
    return next(s for s in ACTION["runs"]["steps"] if s.get("name") == name)


def _resolve(text: str, context: dict[str, str]) -> str:
    """GitHub's ${{ }} for the few names the steps' env use; anything else is
    a name this test does not know, and fails it."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in context, f"the test does not know ${{{{ {name} }}}}"
        return context[name]
    return EXPRESSION.sub(value, str(text))


def _run_step(step: dict, bin_dir: Path, context: dict[str, str], cwd: Path,
              extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "HOPSIM_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env.update({k: _resolve(v, context) for k, v in step.get("env", {}).items()})
    env.update(extra_env or {})
    assert step["shell"] == "bash"
    # GitHub runs `bash --noprofile --norc -eo pipefail {0}` for shell: bash.
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                           step["run"]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


# --- the Action ------------------------------------------------------------------


def test_the_action_is_composite_and_pastes_no_input_into_a_script():
    assert ACTION["runs"]["using"] == "composite"
    steps = ACTION["runs"]["steps"]
    for step in steps:
        if "run" in step:
            assert "shell" in step, step["name"]
            assert "${{" not in step["run"], f"{step['name']}: use env, not ${{{{ }}}} in run"
    uses = [s["uses"] for s in steps if "uses" in s]
    assert [u.split("@")[0] for u in uses] == ["actions/setup-python",
                                               "github/codeql-action/upload-sarif"]
    for use in uses:  # pinned by commit: a tag can be moved to other code
        assert re.fullmatch(r"[^@]+@[0-9a-f]{40}", use), use
    upload = _step("Upload SARIF to code scanning")
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    for name, spec in ACTION["inputs"].items():
        assert spec["description"], name


def _action_run(runner: dict[str, Path], tmp_path: Path, paths: str, **inputs: str) -> dict:
    workspace = tmp_path / "repo"
    shutil.copytree(ROOT / "topologies", workspace / "topologies")
    shutil.copytree(ROOT / "tests" / "fixtures" / "ci", workspace / "designs")
    shutil.copytree(ROOT / "tests" / "fixtures" / "terraform", workspace / "infra")
    runner_temp = runner["temp"]  # holds the virtualenv the install step made
    (runner_temp / "hopsim-summary.md").unlink(missing_ok=True)
    fresh_bin = runner["python"].parent  # the job's PATH: its own Python, no hopsim
    summary, output = tmp_path / "step_summary.md", tmp_path / "github_output"
    summary.write_text("earlier step's summary\n")
    context = {f"inputs.{k}": str(v["default"]) for k, v in ACTION["inputs"].items()}
    context.update({"inputs.paths": paths, "runner.temp": str(runner_temp),
                    "github.action_path": str(ROOT)})
    context.update({f"inputs.{k}": v for k, v in inputs.items()})
    files = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    check = _run_step(_step("Run hopsim check"), fresh_bin, context, workspace, files)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    context.update({f"steps.check.outputs.{k}": v for k, v in outputs.items()})
    fail = _step("Fail on findings")
    failed = None
    condition = fail["if"]
    code = outputs["exit-code"]
    # The step's condition, for the default fail-on-findings: true.
    assert condition.replace(" ", "").startswith("${{steps.check.outputs.exit-code!='0'&&")
    if code != "0":
        failed = _run_step(fail, fresh_bin, context, workspace, files)
    return {"check": check, "outputs": outputs, "summary": summary.read_text(),
            "sarif": workspace / outputs["sarif-file"], "failed": failed}


def test_the_action_passes_a_clean_design(runner, tmp_path):
    run = _action_run(runner, tmp_path, "topologies/host-process.yaml "
                                           "topologies/ssrf-alb-required.yaml")
    assert run["check"].returncode == 0, run["check"].stderr
    assert run["outputs"] == {"exit-code": "0", "sarif-file": "hopsim.sarif"}
    assert run["summary"].startswith("earlier step's summary\n### hopsim check: ✅ no findings")
    assert run["failed"] is None
    table = run["check"].stdout
    assert "host-process at hop limit 1: ok (topologies/host-process.yaml)" in table


def test_the_action_annotates_and_fails_a_leaky_design(runner, tmp_path):
    run = _action_run(runner, tmp_path, "designs/gateway-drift.yaml")
    assert run["check"].returncode == 0  # the step itself records the code
    assert run["outputs"]["exit-code"] == "1"
    sarif = json.loads(run["sarif"].read_text())
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema, cls=jsonschema.Draft4Validator)
    located = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
               for r in sarif["runs"][0]["results"]}
    assert located == {("token-leak", "designs/gateway-drift.yaml"),
                       ("failed-expectation", "designs/gateway-drift.yaml")}
    assert "### hopsim check: ❌ 2 findings" in run["summary"]
    assert run["failed"].returncode == 1
    assert "::error::hopsim check exited 1" in run["failed"].stdout


def test_the_action_applies_real_settings(runner, tmp_path):
    # workers.yaml assumes hop limit 1 (its container starves); the plan's
    # launch template gives the fleet 2.
    run = _action_run(runner, tmp_path, "infra/workers.yaml", settings="infra/plan.json")
    assert run["outputs"]["exit-code"] == "0", run["check"].stderr
    assert "| app-workers | 2 | ✅ ok |" in run["summary"]


def test_the_action_fails_on_bad_input_and_still_reports(runner, tmp_path):
    run = _action_run(runner, tmp_path, "designs")
    assert run["outputs"]["exit-code"] == "2"
    notes = json.loads(run["sarif"].read_text())["runs"][0]["invocations"][0]
    assert "unknown kind 'routr'" in notes["toolExecutionNotifications"][0]["message"]["text"]
    assert "**Bad input**" in run["summary"]
    assert run["failed"].returncode == 2


# --- the pre-commit hook -----------------------------------------------------------


def _hook() -> dict:
    hook, = HOOKS
    return hook


def test_the_hook_declares_what_pre_commit_requires():
    hook = _hook()
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["id"] == "hopsim-check"
    assert hook["language"] == "python"  # pre-commit pip-installs this repository
    assert hook.get("pass_filenames", True)


def test_the_hook_selects_topology_files_only():
    pattern = re.compile(_hook()["files"])
    assert pattern.search("topologies/docker-bridge.yaml")
    assert pattern.search("infra/topologies/prod.yml")
    assert not pattern.search(".github/workflows/ci.yml")
    assert not pattern.search("action.yml")


def _hook_run(fresh_bin: Path, files: list[str]) -> subprocess.CompletedProcess:
    hook = _hook()
    pattern = re.compile(hook["files"])
    selected = [f for f in files if pattern.search(f) and f.endswith((".yaml", ".yml"))]
    command = hook["entry"].split() + hook.get("args", []) + selected
    env = {**os.environ, "PATH": f"{fresh_bin}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_hook_passes_good_designs(fresh_bin):
    result = _hook_run(fresh_bin, ["README.md", "topologies/host-process.yaml",
                                   "topologies/open-waf.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 topologies, 2 results: 2 ok" in result.stdout


def test_the_hook_fails_a_leaking_design_and_names_it(fresh_bin):
    result = _hook_run(fresh_bin, ["topologies/open-router.yaml", "topologies/open-nat.yaml"])
    # open-router and open-nat are ok at their configured hop limit 1 ...
    assert result.returncode == 0
    result = _hook_run(fresh_bin, ["topologies/eks-untrusted-pod.yaml"])
    # ... eks-untrusted-pod is configured at 2, where the pod gets the token.
    assert result.returncode == 1
    assert "eks-untrusted-pod at hop limit 2: leak (topologies/eks-untrusted-pod.yaml)" in \
        result.stdout


# --- the docs: how others pin hopsim ---------------------------------------------


def test_the_docs_pin_every_action_and_hopsim_itself_by_commit():
    # hopsim has no release tags: a tag in the docs would not even resolve.
    text = (ROOT / "docs" / "ci.md").read_text() + (ROOT / ".pre-commit-hooks.yaml").read_text()
    uses = re.findall(r"uses: (\S+)", text)
    assert "OWNER/hopsim@COMMIT" in uses
    for use in uses:
        assert use == "OWNER/hopsim@COMMIT" or re.fullmatch(r"[^@]+@[0-9a-f]{40}", use), use
    assert re.findall(r"rev: (\S+)", text) == ["COMMIT", "COMMIT"]
    assert "hopsim@COMMIT\"" in text  # GitLab's pip install
    assert "replace `OWNER` with the GitHub\naccount or organisation" in text
    assert "git ls-remote https://github.com/OWNER/hopsim HEAD" in text
