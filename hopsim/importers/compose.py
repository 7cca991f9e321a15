"""Docker Compose files (the compose specification) -> a topology.

One EC2 instance runs the Docker engine: it routes and masquerades for its
bridged containers [C: Docker's MASQUERADE rule, one decrement per NAT box,
checked on a real kernel]. What each construct becomes (docs/importers.md):

- a service on user-defined networks (or `default`): a container linked to a
  bridge per network, the bridges linked to the instance: one routed hop;
- `network_mode: host`: the container runs on the instance (no hop);
  `bridge`: Docker's docker0; `none`: no network, left out;
  `service:NAME` / `container:NAME`: the same attachment as NAME;
- an image known to be a relay (nginx, squid ...): an L7 relay node; with a
  port published beyond localhost, an outside client (role attacker) whose
  requests go through it;
- a VPN endpoint (a VPN image, or a forwarding sysctl): a tunnel node whose
  remote peers (role attacker) come out of the tunnel there;
- Docker-in-Docker (docker:dind): a forwarding, masquerading host with a bridge
  of its own and the job containers it starts behind it;
- `x-hopsim:` on a service: role, relay settings; at the top level:
  `instance:` (which instance of --settings runs this file) and `imds:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hopsim.importers.design import (
    CannotModel,
    Design,
    Position,
    hopsim_fields,
    imds_fields,
    relay_override,
)
from hopsim.importers.images import forwards, is_docker_daemon, is_vpn, relay_of
from hopsim.outcome import Role
from hopsim.topology.reader import Abort, nearest, read_yaml, show

SOURCE = "compose"

SERVICE_KEYS = frozenset({
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
    "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "driver_opts", "entrypoint",
    "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "label_file",
    "labels", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
    "mem_swappiness", "memswap_limit", "models", "network_mode", "networks",
    "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
    "post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy", "read_only",
    "restart", "runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open",
    "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits",
    "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
})  # the compose specification's service keys
TOP_KEYS = frozenset({"version", "name", "services", "networks", "volumes", "configs",
                      "secrets", "include", "models"})
LOCAL_ADDRESSES = ("127.", "::1", "[::1]", "localhost")


def looks_like(doc: Any) -> bool:
    return (isinstance(doc, dict) and isinstance(doc.get("services"), dict)
            and "nodes" not in doc and "units" not in doc)


class _Reader:
    def __init__(self, doc: dict[str, Any], lines: dict[str, int], columns: dict[str, int],
                 file: str):
        self.doc, self.lines, self.columns, self.file = doc, lines, columns, file
        self.services: dict[str, Any] = doc["services"]
        self.attached: dict[str, tuple[str, list[str]]] = {}  # service -> (mode, bridges)
        self.resolving: set[str] = set()

    def at(self, *path: Any) -> Position | None:
        return nearest(self.lines, self.columns, path)


def read(text: str, file: str) -> Design:
    try:
        doc, lines, columns, soft = read_yaml(text)
    except Abort as abort:
        raise CannotModel(abort.line, abort.key, abort.message) from None
    if not looks_like(doc):
        raise CannotModel(1, "services", "not a compose file: expected a mapping `services:`")
    r = _Reader(doc, lines, columns, file)
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    project = name or Path(file).resolve().parent.name or Path(file).stem
    design = Design(project, f"Imported from {file} (Docker Compose): one EC2 instance runs "
                    "the Docker engine, which routes and masquerades for its bridged "
                    "containers.", SOURCE)
    for line, key, message in soft:
        design.note(f"{file}:{line}", f"{key}: {message}")
    for key in doc:
        if key not in TOP_KEYS and not str(key).startswith("x-"):
            design.note(_where(file, r.at(key)), f"unknown top-level key {show(key)} ignored")
    if "include" in doc:
        design.note(_where(file, r.at("include")), "include: the included files are not "
                    "read; check them on their own")
    own = doc.get("x-hopsim")
    if isinstance(own, dict):
        imds_fields(own.get("imds"), "x-hopsim.imds", design)
        if isinstance(own.get("instance"), str):
            design.instance_name = own["instance"]
        for key in own:
            if key not in ("imds", "instance"):
                design.note(_where(file, r.at("x-hopsim", key)),
                            f"unknown x-hopsim key {show(key)} ignored; expected imds, instance")
    host = design.instance(True, "the Docker host: routes and masquerades for its bridged "
                           "containers", r.at("services"))
    for service in r.services:
        _service(r, design, host, service)
    return design


def _where(file: str, at: Position | None) -> str:
    return f"{file}:{at[0]}" if at else file


def _service(r: _Reader, design: Design, host: str, service: Any) -> None:
    raw = r.services[service]
    where = _where(r.file, r.at("services", service))
    if not isinstance(raw, dict):
        if raw is not None:
            design.note(where, f"service {show(service)}: expected a mapping; left out")
        raw = {}
    for key in raw:
        if key not in SERVICE_KEYS and not str(key).startswith("x-"):
            design.note(_where(r.file, r.at("services", service, key)),
                        f"services.{service}: unknown key {show(key)} ignored")
    if "extends" in raw:
        design.note(where, f"services.{service}.extends is not followed: the service is "
                    "read as written here")
    own = hopsim_fields(raw.get("x-hopsim"), f"services.{service}.x-hopsim", design)
    mode, bridges = _attachment(r, design, host, service)
    if mode == "none":
        design.note(where, f"services.{service}: network_mode none: no network, no IMDS; "
                    "left out")
        return
    at = r.at("services", service)
    image = raw.get("image") or _built_from(raw.get("build"))
    relay = relay_override(own, relay_of(image))
    ports_at = r.at("services", service, "ports")
    published = own.get("outsiders", _published(raw.get("ports")))
    sysctls = _sysctls(raw.get("sysctls"))
    what = f"service {service}"
    if relay is not None:
        node = design.relay(service, relay, at, f"{what} ({image})",
                            runs_on=host if mode == "host" else None)
        _place_own(r, design, node, service, own)
        for bridge in bridges:
            design.link(node, bridge)
        if own.get("role"):
            design.note(where, f"services.{service}: a relay is not a principal; its role "
                        "is ignored")
        if published:
            design.outsider(node, host, ports_at or at, f"{what}'s published ports")
        return
    if own.get("relay") is not False and (is_vpn(image) or forwards(sysctls)):
        _vpn(r, design, host, service, mode, bridges, own)
        return
    if is_docker_daemon(image) or (raw.get("privileged") is True and
                                   str(image or "").split(":")[0].endswith("docker")):
        _dind(r, design, host, service, mode, bridges, own)
        return
    node = design.node(service, at, f"{what}" + (f" ({image})" if image else ""),
                       kind="container", runs_on=host if mode == "host" else None,
                       role=own.get("role"), replicas=_replicas(raw),
                       description=own.get("description") or _describe(service, mode))
    _place_own(r, design, node, service, own)
    if mode == "host":
        design.place(node, "runs_on", r.at("services", service, "network_mode"))
    for bridge in bridges:
        design.link(node, bridge)


def _built_from(build: Any) -> str | None:
    """A service built from a folder named after what it runs (`build: ./nginx`):
    the folder's name stands in for an image, read as one would."""
    context = build.get("context") if isinstance(build, dict) else build
    if not isinstance(context, str) or "://" in context or not context.strip("./"):
        return None
    return Path(context.rstrip("/")).name


def _describe(service: str, mode: str) -> str:
    if mode == "host":
        return f"service {service}, network_mode host: in the instance's network stack"
    return f"service {service}, a bridged container"


def _place_own(r: _Reader, design: Design, node: str, service: Any,
               own: dict[str, Any]) -> None:
    for key in own:
        design.place(node, key, r.at("services", service, "x-hopsim", key),
                     f"services.{service}.x-hopsim.{key}")


def _attachment(r: _Reader, design: Design, host: str, service: Any
                ) -> tuple[str, list[str]]:
    """("host" | "bridge" | "none", the bridge nodes it is linked to)."""
    if service in r.attached:
        return r.attached[service]
    raw = r.services[service] if isinstance(r.services[service], dict) else {}
    mode = raw.get("network_mode")
    key = f"services.{service}.network_mode"
    at = r.at("services", service, "network_mode")
    if mode is None:
        used = r.at("services", service, "networks") or r.at("services", service)
        found = ("bridge", [_bridge(r, design, host, net, used) for net in _networks(raw)])
    elif mode == "host":
        found = ("host", [])
    elif mode == "none":
        found = ("none", [])
    elif mode == "bridge":
        found = ("bridge", [_docker0(design, host, at)])
    elif isinstance(mode, str) and mode.split(":", 1)[0] in ("service", "container"):
        how, other = mode.split(":", 1)
        if how == "container":
            other = next((s for s, v in r.services.items() if isinstance(v, dict)
                          and v.get("container_name") == other), other)
        if other not in r.services:
            raise CannotModel(at[0] if at else None, key,
                              f"network_mode {mode!r}: shares the network of a container "
                              "this file does not define; hopsim cannot tell its network")
        if other in r.resolving:
            raise CannotModel(at[0] if at else None, key, f"network_mode {mode!r}: services "
                              "share each other's network in a circle")
        r.resolving.add(service)
        found = _attachment(r, design, host, other)
        r.resolving.discard(service)
    else:
        raise CannotModel(at[0] if at else None, key,
                          f"network_mode {show(mode)}: expected host, bridge, none, "
                          "service:NAME or container:NAME")
    r.attached[service] = found
    return found


def _networks(raw: dict[str, Any]) -> list[str]:
    networks = raw.get("networks")
    if isinstance(networks, dict):
        return [str(n) for n in networks] or ["default"]
    if isinstance(networks, list):
        return [str(n) for n in networks if isinstance(n, str | int)] or ["default"]
    return ["default"]


def _bridge(r: _Reader, design: Design, host: str, network: str,
            used: Position | None) -> str:
    """The bridge node of a compose network, made once."""
    made = f"network:{network}"
    if made in design.origin.values():
        return next(n for n, o in design.origin.items() if o == made)
    declared = r.doc.get("networks") if isinstance(r.doc.get("networks"), dict) else {}
    spec = declared.get(network) if isinstance(declared.get(network), dict) else {}
    at = r.at("networks", network) if network in declared else used  # first user
    driver = spec.get("driver", "bridge")
    key = f"networks.{network}.driver"
    if driver in ("macvlan", "ipvlan"):
        line = r.at("networks", network, "driver")
        raise CannotModel(line[0] if line else None, key,
                          f"a {driver} network puts containers straight on the instance's "
                          "subnet; hopsim cannot model it yet")
    if driver not in ("bridge", None, "overlay") and not spec.get("external"):
        design.note(_where(r.file, at), f"networks.{network}: driver {show(driver)} "
                    "modelled as a bridge")
    if driver == "overlay":
        design.note(_where(r.file, at), f"networks.{network}: an overlay network is "
                    "modelled as a bridge on this instance; a swarm overlay between hosts "
                    "adds tunnel endpoints [U]")
    bridge = design.node(f"net-{network}", at, made, kind="bridge",
                         description=f"compose network {network}: a Linux bridge on the "
                         "instance")
    if spec.get("internal") is True:
        design.note(_where(r.file, at), f"networks.{network}: internal: no route out of "
                    "it, so none to IMDS")
    else:
        design.link(bridge, host)
    return bridge


def _docker0(design: Design, host: str, at: Position | None) -> str:
    made = "network:docker0"
    if made in design.origin.values():
        return next(n for n, o in design.origin.items() if o == made)
    bridge = design.node("docker0", at, made, kind="bridge",
                         description="Docker's default bridge (network_mode: bridge)")
    design.link(bridge, host)
    return bridge


def _published(ports: Any) -> bool:
    """Whether any port is published beyond the instance itself: an outside
    client can reach the service. `expose` publishes nothing; a port bound
    to 127.0.0.1 or ::1 reaches no one outside."""
    if not isinstance(ports, list):
        return False
    for port in ports:
        if isinstance(port, dict):  # long syntax; no `published`: a random host port
            host_ip = str(port.get("host_ip", ""))
        elif isinstance(port, int):
            host_ip = ""
        elif isinstance(port, str):
            host_ip = port.rsplit(":", 2)[0] if port.count(":") >= 2 else ""
            if port.startswith("["):  # [::1]:8080:80
                host_ip = port[1:port.index("]")] if "]" in port else ""
        else:
            continue
        if not host_ip.startswith(LOCAL_ADDRESSES):
            return True
    return False


def _sysctls(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        out = {}
        for item in raw:
            key, _, value = str(item).partition("=")
            out[key.strip()] = value.strip()
        return out
    return {}


def _replicas(raw: dict[str, Any]) -> int | None:
    deploy = raw.get("deploy") if isinstance(raw.get("deploy"), dict) else {}
    count = deploy.get("replicas", raw.get("scale"))
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 1 \
        else None


def _vpn(r: _Reader, design: Design, host: str, service: Any, mode: str,
         bridges: list[str], own: dict[str, Any]) -> None:
    """A VPN endpoint: remote peers' packets leave the tunnel here and are
    routed on (one decrement per endpoint that routes [U]); then the
    instance routes them too when the endpoint is bridged."""
    at = r.at("services", service)
    what = f"service {service}'s VPN peers"
    peers_at = r.at("services", service, "ports") or at
    if mode == "host":
        design.note(_where(r.file, at), f"services.{service}: a VPN endpoint in the "
                    "instance's network stack: the instance routes for its peers")
        peers = design.node(f"peers-{service}", peers_at, what, kind="client",
                            role=Role.ATTACKER.value,
                            description=f"remote peers of the VPN in service {service}")
        design.link(peers, host)
        return
    tunnel = design.node(service, at, f"service {service} (VPN endpoint)", kind="tunnel",
                         description=f"service {service}: a VPN endpoint that routes its "
                         "peers' packets")
    for bridge in bridges:
        design.link(tunnel, bridge)
    peers = design.node(f"peers-{service}", peers_at, what, kind="client", role=Role.ATTACKER.value,
                        description=f"remote peers of the VPN in service {service}: "
                        "outsiders to this instance")
    design.link(peers, tunnel)
    if own.get("role"):
        design.note(_where(r.file, at), f"services.{service}: a VPN endpoint is modelled as "
                    "a tunnel, not a principal; its role is ignored")


def _dind(r: _Reader, design: Design, host: str, service: Any, mode: str,
          bridges: list[str], own: dict[str, Any]) -> None:
    """Docker-in-Docker: the service runs a Docker daemon that routes and
    masquerades for the containers it starts, one more hop [O: DinD needs
    hop limit 3]."""
    at = r.at("services", service)
    privileged = r.at("services", service, "privileged") or r.at("services", service, "image")
    if mode == "host":
        daemon = host
    else:
        daemon = design.node(service, at, f"service {service} (Docker-in-Docker)",
                             kind="host", forwarding=True, masquerade=True,
                             role=own.get("role"),
                             description=f"service {service}: a Docker daemon in a "
                             "container, routing for its own containers")
        _place_own(r, design, daemon, service, own)
        for bridge in bridges:
            design.link(daemon, bridge)
    inner = design.node(f"{service}-docker0", privileged, f"service {service}'s own bridge",
                        kind="bridge", description=f"the bridge of the Docker daemon in "
                        f"service {service}")
    design.link(inner, daemon)
    jobs = design.node(f"{service}-jobs", privileged, f"containers that service {service} "
                       "starts", kind="container", description="containers the inner "
                       "Docker daemon starts (CI jobs, builds)")
    design.link(jobs, inner)
