"""Real settings in: `terraform show -json` plans (modules, counts, for_each,
launch templates, imds-support v2.0 AMIs) and `aws ec2 describe-instances`;
--settings on check and sweep; `hopsim import` rewriting a topology file."""

from __future__ import annotations

import json
import shutil

import pytest
from builders import ROOT
from ci_helpers import run

from hopsim import load, settings

FIXTURES = ROOT / "tests" / "fixtures" / "terraform"
PLAN = "tests/fixtures/terraform/plan.json"
DESCRIBE = "tests/fixtures/terraform/describe-instances.json"
WORKERS = "tests/fixtures/terraform/workers.yaml"
BASTION = "tests/fixtures/terraform/bastion.yaml"
GATEWAY = "tests/fixtures/terraform/gateway.yaml"


def by_address(instances):
    return {i.address: dict(i.settings) for i in instances}


def imds(hop_limit, http_tokens, http_endpoint="enabled", ipv6=False):
    return {"hop_limit": hop_limit, "http_tokens": http_tokens,
            "http_endpoint": http_endpoint, "ipv6": ipv6}


# --- reading ------------------------------------------------------------------------


def test_a_plan_with_modules_counts_launch_templates_and_amis():
    found = by_address(settings.read(FIXTURES / "plan.json"))
    assert found == {
        # only http_tokens set; the hop limit is computed: AWS's default 1
        "aws_instance.bastion": imds(1, "optional"),
        "aws_launch_template.web": imds(2, "required"),
        # count = 2, no metadata_options: the launch template's, found by its id
        "module.app.aws_instance.worker[0]": imds(2, "required"),
        "module.app.aws_instance.worker[1]": imds(2, "required"),
        # a new launch template (id unknown): found through the configuration
        "module.app.aws_instance.api": imds(3, "required"),
        "module.app.aws_launch_template.this": imds(3, "required"),
        # boots data.aws_ami.al2023, imds_support v2.0: required and 2
        'module.ci["runner"].aws_instance.docker': imds(2, "required"),
        # an existing instance: everything known
        "module.edge.aws_instance.gateway": imds(1, "required", ipv6=True),
    }


def test_each_setting_says_where_it_came_from():
    found = {i.address: i for i in settings.read(FIXTURES / "plan.json")}
    assert found["aws_instance.bastion"].origin == {
        "http_tokens": "aws_instance.bastion", "hop_limit": "AWS default",
        "http_endpoint": "AWS default", "ipv6": "AWS default"}
    docker = found['module.ci["runner"].aws_instance.docker'].origin
    assert docker["hop_limit"] == "ami-0a1b2c3d4e5f60718 (imds_support v2.0)"
    assert found["module.app.aws_instance.worker[1]"].origin["hop_limit"] == \
        "aws_launch_template.web"


def test_an_instance_answers_to_its_address_without_indexes_and_to_its_id():
    found = {i.address: i for i in settings.read(FIXTURES / "plan.json")}
    assert "module.app.aws_instance.worker" in found["module.app.aws_instance.worker[1]"].keys
    assert "module.ci.aws_instance.docker" in found['module.ci["runner"].aws_instance.docker'].keys
    assert "i-0123456789abcdef0" in found["module.edge.aws_instance.gateway"].keys


def test_a_state_is_read_like_a_plan(tmp_path):
    plan = json.loads((FIXTURES / "plan.json").read_text())
    state = {"format_version": "1.0", "terraform_version": "1.7.5",
             "values": plan["planned_values"]}
    (tmp_path / "state.json").write_text(json.dumps(state))
    found = by_address(settings.read(tmp_path / "state.json"))
    assert found["module.edge.aws_instance.gateway"] == imds(1, "required", ipv6=True)


def test_describe_instances():
    found = by_address(settings.read(FIXTURES / "describe-instances.json"))
    assert found == {"i-0123456789abcdef0": imds(2, "optional"),
                     "i-0fedcba98765432a1": imds(2, "required")}


@pytest.mark.parametrize("content,message", [
    ("Error: No configuration files\n", "not JSON at line 1: expected the output of "
     "`terraform show -json` or `aws ec2 describe-instances`"),
    ('{"resources": []}', "neither `terraform show -json` output"),
    ('{"Reservations": {}}', "Reservations: expected a list"),
    ('{"Reservations": [{"Instances": [{"InstanceId": "i-1", "MetadataOptions": '
     '{"HttpPutResponseHopLimit": 0}}]}]}', "i-1: hop limit 0 is not 1..64"),
    ('{"format_version": "1.2", "planned_values": {"root_module": {"resources": [{"address": '
     '"aws_instance.x", "mode": "managed", "type": "aws_instance", "values": '
     '{"metadata_options": [{"http_tokens": "sometimes"}]}}]}}}',
     "aws_instance.x: http_tokens 'sometimes' is not one of required, optional"),
])
def test_unusable_settings_files_say_why(tmp_path, content, message):
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(settings.SettingsError) as error:
        settings.read(path)
    assert message in str(error.value)


# --- --settings on check and sweep -----------------------------------------------------


def test_settings_replace_the_hop_limit_the_file_assumed(monkeypatch):
    assert run("check", WORKERS, monkeypatch=monkeypatch).exit_code == 1  # starved at 1
    result = run("check", WORKERS, "--settings", PLAN, monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    assert "app-workers at hop limit 2: ok (tests/fixtures/terraform/workers.yaml)" in \
        result.stdout


def test_settings_find_the_leak_the_design_did_not_assume(monkeypatch):
    assert run("check", BASTION, monkeypatch=monkeypatch).exit_code == 0
    result = run("check", BASTION, "--settings", PLAN, "--format", "json",
                 monkeypatch=monkeypatch)
    assert result.exit_code == 1
    neighbour = next(g for g in json.loads(result.stdout)["topologies"][0]["groups"]
                     if g["members"] == ["neighbour"])
    assert neighbour["outcomes"][0]["outcome"] == "credentials"


def test_an_instance_id_matches_a_plan_and_a_description(monkeypatch):
    assert run("check", GATEWAY, "--settings", PLAN, monkeypatch=monkeypatch).exit_code == 0
    result = run("check", GATEWAY, "--settings", DESCRIBE, monkeypatch=monkeypatch)
    assert result.exit_code == 1  # hop limit 2 there: the office gets the token
    assert "at hop limit 2: leak" in result.stdout


def test_what_if_options_still_have_the_last_word(monkeypatch):
    result = run("check", WORKERS, "--settings", PLAN, "--hop-limit", "1",
                 monkeypatch=monkeypatch)
    assert result.exit_code == 1
    assert "at hop limit 1: broken" in result.stdout


def test_sweep_takes_settings_too(monkeypatch):
    result = run("sweep", BASTION, "--settings", PLAN, "--format", "json",
                 monkeypatch=monkeypatch)
    assert result.exit_code == 1  # the expect entry for the neighbour fails
    doc = json.loads(result.stdout)["topologies"][0]
    assert doc["recommended_hop_limit"] is None
    assert "leaks at every hop limit" in doc["recommendation"]


def test_a_plan_that_does_not_parse_is_bad_input(tmp_path, monkeypatch):
    bad = tmp_path / "plan.json"
    bad.write_text("Error: Failed to load plugin schemas\n")
    result = run("check", WORKERS, "--settings", str(bad), monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}: --settings: not JSON at line 1")


def test_a_plan_without_the_instance_is_bad_input_at_the_instance_line(tmp_path, monkeypatch):
    plan = json.loads((FIXTURES / "plan.json").read_text())
    plan["planned_values"]["root_module"]["child_modules"] = []
    other = tmp_path / "plan.json"
    other.write_text(json.dumps(plan))
    result = run("check", WORKERS, BASTION, "--settings", str(other), monkeypatch=monkeypatch)
    assert result.exit_code == 2
    line = load(ROOT / WORKERS).line_of("nodes", "imds", "instance")
    assert (f"error: {WORKERS}:{line}: nodes.imds.instance: no instance "
            "'module.app.aws_instance.worker' in the settings; it has aws_instance.bastion, "
            "aws_launch_template.web") in result.stderr
    assert "bastion at hop limit 1: leak (tests/fixtures/terraform/bastion.yaml)" in \
        result.stdout  # the other file is still checked


def test_settings_for_topologies_that_name_no_instance_are_bad_input(monkeypatch):
    result = run("check", "topologies/docker-bridge.yaml", "--settings", PLAN,
                 monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert "no imds node of the topologies names an instance" in result.stderr


def test_a_key_naming_instances_with_different_settings_is_ambiguous(tmp_path, monkeypatch):
    plan = json.loads((FIXTURES / "plan.json").read_text())
    app = plan["planned_values"]["root_module"]["child_modules"][0]["resources"]
    app[1]["values"]["metadata_options"] = [{"http_put_response_hop_limit": 5}]
    other = tmp_path / "plan.json"
    other.write_text(json.dumps(plan))
    result = run("check", WORKERS, "--settings", str(other), monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert ("'module.app.aws_instance.worker' names 2 instances with different settings "
            "(module.app.aws_instance.worker[0], module.app.aws_instance.worker[1]); "
            "name one of them") in result.stderr


# --- hopsim import ------------------------------------------------------------------


@pytest.fixture
def copies(tmp_path):
    for name in ("workers.yaml", "bastion.yaml", "gateway.yaml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def test_import_terraform_adds_the_key_and_keeps_the_comments(copies, monkeypatch):
    file = copies / "workers.yaml"
    before = file.read_text()
    result = run("import", "terraform", PLAN, str(file), monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{file}: imds <- module.app.aws_instance.worker[0], module.app.aws_instance.worker[1]: "
        "hop_limit 1 -> 2 (aws_launch_template.web)\n")
    after = file.read_text()
    assert after == before.replace(
        "    instance: module.app.aws_instance.worker   # both workers: same settings\n",
        "    instance: module.app.aws_instance.worker   # both workers: same settings\n"
        "    hop_limit: 2\n")
    assert load(file).hop_limits() == {"imds": 2}
    again = run("import", "terraform", PLAN, str(file), monkeypatch=monkeypatch)
    assert again.stdout.endswith("imds: already as module.app.aws_instance.worker[0], "
                                 "module.app.aws_instance.worker[1] says\n")
    assert file.read_text() == after


def test_import_rewrites_a_flow_mapping_in_place(copies, monkeypatch):
    file = copies / "gateway.yaml"
    result = run("import", "ec2", DESCRIBE, str(file), monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    assert "  imds: {kind: imds, instance: i-0123456789abcdef0, hop_limit: 2, " \
           "http_tokens: optional}\n" in file.read_text()
    assert run("check", str(file), monkeypatch=monkeypatch).exit_code == 1


def test_import_replaces_a_value_that_is_there(copies, monkeypatch):
    file = copies / "workers.yaml"
    file.write_text(file.read_text().replace(
        "    instance: module.app.aws_instance.worker   # both workers: same settings\n",
        "    instance: module.app.aws_instance.worker   # both workers: same settings\n"
        "    hop_limit: 5  # guessed\n"))
    run("import", "terraform", PLAN, str(file), monkeypatch=monkeypatch)
    assert "    hop_limit: 2  # guessed\n" in file.read_text()


def test_import_of_the_wrong_kind_of_file_says_which_command_to_use(copies, monkeypatch):
    result = run("import", "ec2", PLAN, str(copies / "gateway.yaml"), monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {PLAN}: this is `terraform show -json` output, not "
                             "`aws ec2 describe-instances` output: use "
                             "`hopsim import terraform`\n")


def test_import_into_a_topology_that_names_no_instance_is_bad_input(tmp_path, monkeypatch):
    file = tmp_path / "docker-bridge.yaml"
    shutil.copy(ROOT / "topologies" / "docker-bridge.yaml", file)
    result = run("import", "terraform", PLAN, str(file), monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert "no imds node names an instance" in result.stderr
    assert file.read_text() == (ROOT / "topologies" / "docker-bridge.yaml").read_text()
