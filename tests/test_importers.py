"""The designs people already write: compose files, Kubernetes manifests, ECS
task definitions read into topologies; the files that set the hop limit
(Terraform source, CloudFormation, Karpenter, eksctl) read into settings;
`hopsim check` and `hopsim import` on them, with findings at the user's lines.

Every outcome asserted here was worked out by hand from the facts (docs/
importers.md): a bridged container is one routed hop from IMDS (Docker's
host routes and masquerades), a host-network one none, an awsvpc task none,
a Docker-in-Docker job two, a VPN peer behind a bridged endpoint two; an
open relay re-sends the token with a fresh TTL.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from builders import ROOT, TOPOLOGIES
from ci_helpers import position, run

from hopsim import analysis, importers
from hopsim.importers import instances
from hopsim.loader import load
from hopsim.settings import SettingsError
from hopsim.topology import TopologyError

CORPUS = ROOT / "tests" / "corpus"
FIXTURES = "tests/fixtures/importers"
COMPOSE = "tests/corpus/compose"
LAUNCH_TEMPLATE = f"{FIXTURES}/launch-template.tf"  # tokens required, hop limit 2


def outcomes(topology, hop_limit=None, http_tokens=None):
    changes = {k: v for k, v in (("hop_limit", hop_limit), ("http_tokens", http_tokens)) if v}
    if changes:
        topology = topology.with_imds(**changes)
    result = analysis.check(topology).results[0]
    return {o.node: o.access.value for o in result.outcomes}


def imported(path, **kwargs):
    return importers.load(ROOT / path if not str(path).startswith("/") else path, **kwargs)


# --- the corpora: real files from public repositories --------------------------------


WORKLOADS = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.parent.name != "settings"
                   and p.suffix in (".yaml", ".yml", ".json"))
# Files hopsim cannot model, each with the one line that says why.
CANNOT = {"ecs/nginx_fargate.json": "runs on Fargate only",
          "kubernetes/web_guestbook_frontend-service.yaml": "no Pod, Deployment"}


def test_the_corpora_hold_a_few_dozen_real_files_with_their_origin():
    readme = (CORPUS / "README.md").read_text()
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.name not in (
        "README.md", "LICENSE-Apache-2.0")]
    assert len(files) >= 50
    for p in files:  # every file's origin: repository, path and commit
        assert f"`{p.relative_to(CORPUS).as_posix()}`" in readme, p


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.relative_to(CORPUS).as_posix())
def test_every_corpus_file_is_recognised_and_read_without_a_traceback(path):
    name = path.relative_to(CORPUS).as_posix()
    assert importers.recognise(path) is not None
    if name in CANNOT:
        with pytest.raises(TopologyError) as error:
            importers.load(path)
        (problem,) = error.value.problems
        assert CANNOT[name] in problem.message and problem.line
        return
    topology = importers.load(path).topology
    assert topology.file == str(path)
    assert "imds" in topology.nodes and topology.principals
    for name_ in topology.nodes:  # every node points into the user's own file
        assert topology.line_of("nodes", name_), name_
    analysis.sweep(topology, range(1, 4))


def test_check_reads_every_compose_file_of_the_corpus_in_one_run_with_no_traceback():
    files = sorted(str(p.relative_to(ROOT)) for p in (CORPUS / "compose").glob("*/compose.y*"))
    result = run("check", *files, "--settings", LAUNCH_TEMPLATE)
    assert result.exit_code == 1, result.output  # open relays leak
    assert "Traceback" not in result.output
    assert "24 topologies" in result.output


def test_nginx_published_in_front_of_a_go_app_is_an_open_relay_for_outsiders():
    # awesome-compose nginx-golang-mysql: `proxy` (image nginx) publishes 80:80;
    # backend and db are bridged on the default network.
    t = imported(f"{COMPOSE}/nginx-golang-mysql/compose.yaml").topology
    assert t.nodes["proxy"].kind == "proxy" and not t.nodes["proxy"].relay.adds_xff
    assert t.nodes["outsider-proxy"].role == "attacker"
    assert t.nodes["outsider-proxy"].via == ("proxy",)
    assert {("backend", "net-default"), ("db", "net-default"), ("proxy", "net-default"),
            ("net-default", "instance"), ("outsider-proxy", "instance")} <= set(t.links)
    # Tokens required: at 1 the instance drops the token on its way to nginx;
    # at 2 nginx gets it (1 router) and relays it: leak.
    assert outcomes(t, 1, "required")["outsider-proxy"] == "none"
    assert outcomes(t, 2, "required")["outsider-proxy"] == "token"
    assert outcomes(t, 2, "required")["backend"] == "token"
    # IMDSv1 on: the tokenless GET through nginx gets the credentials at any hop limit
    assert outcomes(t, 1, "optional")["outsider-proxy"] == "credentials"


def test_a_host_network_service_gets_the_token_at_hop_limit_1():
    t = imported(f"{COMPOSE}/plex/compose.yaml").topology
    assert t.nodes["plex"].runs_on == "instance"
    assert outcomes(t, 1, "required")["plex"] == "token"
    assert t.line_of("nodes", "plex", "runs_on") == position(
        f"{COMPOSE}/plex/compose.yaml", "network_mode")[0]


def test_wireguard_peers_come_out_of_a_bridged_tunnel_two_routers_from_imds():
    # The VPN container routes its peers' packets, then the Docker host does.
    t = imported(f"{COMPOSE}/wireguard/compose.yaml").topology
    assert t.nodes["wireguard"].kind == "tunnel"
    assert t.nodes["peers-wireguard"].role == "attacker"
    assert outcomes(t, 2, "required")["peers-wireguard"] == "none"
    assert outcomes(t, 3, "required")["peers-wireguard"] == "token"


def test_a_service_built_from_a_folder_named_nginx_is_nginx():
    t = imported(f"{COMPOSE}/nginx-nodejs-redis/compose.yaml").topology
    assert t.nodes["nginx"].kind == "proxy"
    t = imported(f"{COMPOSE}/react-nginx/compose.yaml").topology  # build: . says nothing
    assert t.nodes["frontend"].kind == "container"


def test_kubernetes_host_network_daemonsets_and_replicas():
    sysdig = "tests/corpus/kubernetes/sysdig-cloud_sysdig-daemonset.yaml"
    t = imported(sysdig).topology
    assert t.nodes["sysdig-agent"].runs_on == "instance"
    assert t.line_of("nodes", "sysdig-agent") == position(sysdig, "hostNetwork: true")[0]
    assert outcomes(t, 1, "required")["sysdig-agent"] == "token"
    guestbook = imported("tests/corpus/kubernetes/web_guestbook_all-in-one_guestbook-all-in-one"
                         ".yaml").topology
    assert guestbook.nodes["frontend"].replicas == 3
    assert guestbook.nodes["redis-replica"].replicas == 2
    # the pod network is one routed hop: hop limit 2 for pods (EKS advice)
    assert outcomes(guestbook, 1, "required")["frontend"] == "none"
    assert outcomes(guestbook, 2, "required")["frontend"] == "token"


def test_ecs_bridge_task_with_nginx_and_the_agent_on_the_host():
    t = imported("tests/corpus/ecs/nginx_ec2.json").topology
    assert ("nginx", "docker0") in t.links and t.nodes["nginx"].kind == "proxy"
    assert t.nodes["ecs-agent"].runs_on == "instance"
    assert t.nodes["ecs-agent"].role == "workload"
    assert outcomes(t, 1, "required") == {"ecs-agent": "token", "instance": "token",
                                          "outsider-nginx": "none"}
    assert outcomes(t, 2, "required")["outsider-nginx"] == "token"


def test_ecs_awsvpc_tasks_have_no_routed_hop_and_say_what_is_not_modelled():
    result = imported("tests/corpus/ecs/gunicorn_ec2.json")
    assert result.topology.nodes["gunicorn"].runs_on == "instance"
    assert outcomes(result.topology, 1, "required")["gunicorn"] == "token"
    assert any("ECS_AWSVPC_BLOCK_IMDS" in note for note in result.notes)


def test_cloudformation_task_definitions_with_intrinsic_tags():
    t = imported("tests/corpus/ecs/refarch-website-service.yaml").topology
    assert t.nodes["website-service"].kind == "container"
    assert ("website-service", "docker0") in t.links  # no NetworkMode: bridge


# --- settings read from the files that set them -----------------------------------------


def settings_of(path):
    return {i.address: dict(i.settings) for i in instances.read(ROOT / path)}


def imds(hop_limit, http_tokens, http_endpoint="enabled", ipv6=False):
    return {"hop_limit": hop_limit, "http_tokens": http_tokens,
            "http_endpoint": http_endpoint, "ipv6": ipv6}


def test_terraform_source_module_calls_and_their_lines():
    # terraform-aws-ec2-instance examples/complete: module "ec2_metadata_options"
    # passes hop limit 8, tokens required; the other calls pass none (their
    # module's own defaults, unknown here, so they are not instances we know).
    path = "tests/corpus/settings/ec2-instance-complete.tf"
    (instance,) = instances.read(ROOT / path)
    assert instance.address == "module.ec2_metadata_options"
    assert dict(instance.settings) == imds(8, "required")
    assert instance.source_lines["hop_limit"] == position(path, "http_put_response_hop_limit")[0]


def test_a_dynamic_metadata_options_block_is_not_known_from_source():
    with pytest.raises(SettingsError, match=r"line 41: aws_instance.this: metadata_options is a "
                       "dynamic block"):
        instances.read(CORPUS / "settings" / "ec2-instance-module.tf")


def test_cloudformation_karpenter_and_eksctl_settings():
    assert settings_of("tests/corpus/settings/refarch-ecs-cluster.yaml") == {
        "ECSLaunchConfiguration": imds(1, "optional")}  # no MetadataOptions: AWS's defaults
    assert settings_of("tests/corpus/settings/karpenter-general-purpose.yaml") == {
        "EC2NodeClass/default": imds(1, "required")}  # Karpenter's CRD defaults
    assert settings_of("tests/corpus/settings/autoscaling-complete.tf") == {
        "aws_launch_template.this": imds(1, "optional"),
        "module.complete": imds(32, "required")}
    eksctl = settings_of("tests/corpus/settings/eksctl-managed-nodes.yaml")
    assert eksctl["managedNodeGroups/managed-ng-public"] == imds(2, "optional")
    assert "managedNodeGroups/custom-launch-template" not in eksctl  # its own template
    found = instances.read(ROOT / f"{FIXTURES}/ecs-block.yaml")
    assert [(i.address, set(i.imds_blocks)) for i in found] == [("ContainerInstances",
                                                                       {"ECS_AWSVPC_BLOCK_IMDS"})]


# --- hopsim check on the user's own files -------------------------------------------------


def test_check_a_compose_file_with_a_launch_template_names_the_compose_lines(monkeypatch):
    compose = f"{COMPOSE}/nginx-golang-mysql/compose.yaml"
    result = run("check", compose, "--settings", LAUNCH_TEMPLATE, "--format", "sarif",
                 monkeypatch=monkeypatch)
    assert result.exit_code == 1, result.output
    (leak,) = json.loads(result.stdout)["runs"][0]["results"]
    assert leak["ruleId"] == "token-leak"
    where = leak["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"] == compose
    assert where["region"]["startLine"] == position(compose, "ports:")[0]
    related = {r["message"]["text"]: r["physicalLocation"]["region"]["startLine"]
               for r in leak["relatedLocations"]}
    assert related["proxy received the token response for outsider-proxy"] == position(
        compose, "proxy:")[0]
    # ... and at the line of the launch template that sets the hop limit
    (elsewhere,) = [r for r in leak["relatedLocations"]
                    if r["message"]["text"] == "hop limit 2 is set here"]
    assert elsewhere["physicalLocation"]["artifactLocation"]["uri"] == LAUNCH_TEMPLATE
    assert elsewhere["physicalLocation"]["region"]["startLine"] == position(
        LAUNCH_TEMPLATE, "http_put_response_hop_limit")[0]
    markdown = run("check", compose, "--settings", LAUNCH_TEMPLATE, "--format", "markdown")
    assert (f"(token-leak, `{compose}:{position(compose, 'ports:')[0]}`): outsider-proxy"
            in markdown.stdout)
    assert f"hop limit 2: `{LAUNCH_TEMPLATE}:10`" in markdown.stdout
    junit = run("check", compose, "--settings", LAUNCH_TEMPLATE, "--format", "junit")
    assert f"where: {compose}:41\nhop limit 2 is set here: {LAUNCH_TEMPLATE}:10" in \
        junit.stdout


def test_a_starved_compose_workload_is_reported_at_its_service_in_markdown():
    fixture = f"{FIXTURES}/app-compose.yaml"
    result = run("check", fixture, "--settings", f"{FIXTURES}/two-templates.tf", "--format",
                 "markdown")
    # x-hopsim names aws_launch_template.web: hop limit 1, tokens required
    line = position(fixture, "api:")[0]
    assert f"(starved-workload, `{fixture}:{line}`): api (role workload)" in result.stdout
    # the host-network HAProxy relays the token at any hop limit
    assert "(token-leak, " in result.stdout and "outsider-edge" in result.stdout
    assert "unknown key 'colour' ignored" in result.stderr
    assert result.exit_code == 1


def test_what_a_compose_file_says_about_each_service():
    t = imported(f"{FIXTURES}/app-compose.yaml").topology
    assert t.nodes["sidecar"].kind == "container"  # network_mode service:api
    assert {("sidecar", "net-front"), ("sidecar", "net-back")} <= set(t.links)
    assert "batch" not in t.nodes  # network_mode none
    assert "outsider-admin" not in t.nodes  # published on 127.0.0.1 only
    assert ("net-back", "instance") not in t.links  # an internal network
    assert outcomes(t, 2, "required")["db"] == "none"  # only on the internal network
    assert t.nodes["edge"].runs_on == "instance" and t.nodes["agent"].runs_on == "instance"
    assert t.nodes["imds"].instance == "aws_launch_template.web"


def test_docker_in_docker_jobs_need_hop_limit_3():
    t = imported(f"{FIXTURES}/dind-compose.yaml").topology
    assert t.nodes["docker"].kind == "host" and t.nodes["docker"].forwarding
    assert outcomes(t, 2, "required")["docker-jobs"] == "none"
    assert outcomes(t, 3, "required")["docker-jobs"] == "token"


def test_multi_document_manifests_keep_the_lines_of_the_whole_file():
    path = f"{FIXTURES}/manifests.yaml"
    t = imported(path).topology
    assert t.nodes["web"].kind == "proxy"  # nginx behind a LoadBalancer Service
    assert t.nodes["outsider-web"].via == ("web",)
    assert t.nodes["node-agent"].runs_on == "instance"
    assert t.line_of("nodes", "node-agent") == position(path, "hostNetwork: true")[0]
    assert t.nodes["report"].role == "workload"  # a CronJob's annotation
    assert t.line_of("nodes", "report") == position(path, "name: report")[0]


def test_a_settings_file_with_several_instances_needs_to_be_told_which():
    result = run("check", f"{COMPOSE}/plex/compose.yaml", "--settings",
                 f"{FIXTURES}/two-templates.tf")
    assert result.exit_code == 2
    assert "the settings hold 2 instances with different metadata options" in result.stderr
    assert "x-hopsim: {instance: ADDRESS}" in result.stderr


def test_an_awsvpc_task_whose_agent_blocks_imds_cannot_be_modelled_yet():
    task = "tests/corpus/ecs/gunicorn_ec2.json"
    result = run("check", task, "--settings", f"{FIXTURES}/ecs-block.yaml")
    assert result.exit_code == 2
    line = position(task, '"networkMode"')[0]
    assert f"error: {task}:{line}: networkMode: awsvpc tasks on ContainerInstances" in \
        result.stderr
    assert "hopsim cannot model yet" in result.stderr
    assert "ok" not in result.stdout.split()


@pytest.mark.parametrize(("fixture", "message"), [
    ("bad-network-mode.yaml", ":4: services.web.network_mode: network_mode '${WEB_NETWORK}': "
     "expected host, bridge, none, service:NAME or container:NAME"),
    ("helm-template.yaml", ":4: a Helm template, not a manifest"),
])
def test_a_file_hopsim_cannot_model_gets_one_line_and_exit_2(fixture, message):
    result = run("check", f"{FIXTURES}/{fixture}")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.output


def test_without_python_hcl2_terraform_source_is_one_line_and_exit_2():
    code = ("import sys; sys.modules['hcl2'] = None\n"
            "from hopsim.cli import main\n"
            f"main(['check', '{COMPOSE}/plex/compose.yaml', '--settings', '{LAUNCH_TEMPLATE}'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={"NO_COLOR": "1", "PATH": ""})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert ("python-hcl2, which is not installed: pip install 'hopsim[terraform]'"
            in done.stderr)


def test_the_bundled_topologies_are_not_taken_for_other_files():
    for path in sorted(TOPOLOGIES.glob("*.yaml")):
        assert importers.recognise(path) is None, path


# --- hopsim import: the topology written out ---------------------------------------------


@pytest.mark.parametrize(("source", "path"), [
    ("compose", f"{FIXTURES}/app-compose.yaml"),
    ("kubernetes", f"{FIXTURES}/manifests.yaml"),
    ("ecs", "tests/corpus/ecs/nginx_ec2.json"),
])
def test_import_writes_the_model_check_uses_as_a_topology_file(source, path, tmp_path):
    out = tmp_path / "imported.yaml"
    result = run("import", source, path, "-o", str(out))
    assert result.exit_code == 0, result.output
    written = load(out)
    in_memory = imported(path).topology
    assert {n: (v.kind, v.role, v.runs_on, v.via) for n, v in written.nodes.items()} == \
        {n: (v.kind, v.role, v.runs_on, v.via) for n, v in in_memory.nodes.items()}
    assert set(written.links) == set(in_memory.links)
    text = out.read_text()
    assert f"# service api (${{REGISTRY}}/shop-api:${{TAG:-latest}}), {path}:" in text or \
        source != "compose"


def test_validate_and_sweep_take_imported_files_as_they_are():
    assert run("validate", f"{COMPOSE}/plex/compose.yaml").exit_code == 0
    sweep = run("sweep", f"{FIXTURES}/dind-compose.yaml", "--hop-limits", "1-3")
    assert sweep.exit_code == 0
    t = imported(f"{FIXTURES}/dind-compose.yaml").topology
    report = analysis.sweep(t.with_imds(http_tokens="required"), range(1, 4))
    assert report.recommended_hop_limit == 2  # jobs have no role; the runner needs 2



def test_a_docker_user_rule_in_the_user_data_cannot_be_modelled_yet():
    # Judging the bridged containers as if the rule were not there would call
    # a blocked workload fed: one line at the first of them instead.
    task = "tests/corpus/ecs/nginx_ec2.json"
    result = run("check", task, "--settings", f"{FIXTURES}/docker-user.tf")
    assert result.exit_code == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    line = position(task, '"name": "nginx"')[0]
    assert error.startswith(f"error: {task}:{line}: nginx: aws_launch_template.ecs's user "
                            "data drops forwarded traffic")
    host_only = run("check", f"{COMPOSE}/plex/compose.yaml", "--settings",
                    f"{FIXTURES}/docker-user.tf")  # nothing behind a routed hop
    assert host_only.exit_code == 0, host_only.output


def test_a_wrong_hopsim_key_is_reported_at_its_line_in_the_users_words(tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  app:\n    image: myapp\n    x-hopsim:\n"
                       "      role: atacker\n")
    for args in (("check", str(compose)), ("import", "compose", str(compose))):
        result = run(*args)
        assert result.exit_code == 2
        assert (f"error: {compose}:5: services.app.x-hopsim.role: expected one of workload, "
                "attacker, got 'atacker' (did you mean 'attacker'?)") in result.stderr


def test_terraform_task_definitions_jsonencode_and_heredoc():
    path = f"{FIXTURES}/task-definition.tf"
    t = imported(path).topology
    assert t.nodes["nginx"].kind == "proxy" and ("nginx", "docker0") in t.links
    assert t.nodes["outsider-nginx"].via == ("nginx",)  # hostPort 0: a dynamic host port
    assert t.nodes["app"].role == "workload" and ("app", "docker0") in t.links
    assert t.nodes["worker"].runs_on == "instance"  # awsvpc
    assert t.line_of("nodes", "app") == position(path, '"app"')[0]
    # tokens required, hop limit 1: the bridged app starves, awsvpc and the agent do not
    assert outcomes(t, 1, "required") == {"app": "none", "ecs-agent": "token",
                                          "instance": "token", "outsider-nginx": "none",
                                          "worker": "token"}


def test_a_network_mode_written_as_an_expression_is_one_line(tmp_path):
    tf = tmp_path / "task.tf"
    tf.write_text('resource "aws_ecs_task_definition" "x" {\n  family = "x"\n'
                  '  network_mode = var.mode\n  container_definitions = "[]"\n}\n')
    result = run("check", str(tf))
    assert result.exit_code == 2
    assert (f"error: {tf}:3: aws_ecs_task_definition.x.network_mode: network_mode is an "
            "expression (var.mode)") in result.stderr


# --- the kernel agrees with the models of real files ---------------------------------------


KERNEL_FILES = [f"{COMPOSE}/nginx-golang-mysql/compose.yaml", f"{COMPOSE}/wireguard/compose.yaml",
                f"{FIXTURES}/dind-compose.yaml", f"{FIXTURES}/manifests.yaml",
                "tests/corpus/ecs/nginx_ec2.json"]


@pytest.mark.kernel
@pytest.mark.parametrize("path", KERNEL_FILES)
def test_the_kernel_agrees_with_the_model_of_an_imported_file(path):
    from hopsim.emulate import netns, stopping_on_signals
    from hopsim.emulate import verify as verify_one

    why_not = netns.missing()
    if why_not is not None:
        pytest.skip(f"needs the kernel: {why_not}")
    topology = imported(path).topology.with_imds(http_tokens="required")
    with stopping_on_signals():  # as the CLI runs it: namespaces deleted on the way out
        check = verify_one(topology, (1, 2, 3), 4)
    assert len(check.cases) == 3 * len(topology.principals)
    assert not check.disagreements, [(c.hop_limit, c.principal) for c in check.disagreements]
