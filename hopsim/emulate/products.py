"""Real products as relays: a relay node with `product` runs that product's
own binary (Debian's package) in the relay's namespace, instead of hopsim's
relay.

Its configuration is generated from the node: the product's defaults (nothing
that changes how it relays is set), the one misconfiguration that makes it an
open relay to its upstream (marked `open relay`), and a line for each key the
node sets against the product's default (marked `from the node`). The
upstream of a reverse proxy is the next station of the routes through it
(IMDS, or the next relay), as `proxy_pass http://169.254.169.254` would be;
a forward proxy and the SSRF app go where each request says, so the request
a principal sends is addressed for every product on its route (`addressed`):
`PUT http://169.254.169.254/latest/api/token` to a forward proxy,
`/?site=http%3A%2F%2F169.254.169.254%2F...` to the SSRF app.

Every request through a product carries `?hopsim-flow=PORT` (its flow's
first port) on to IMDS, so the IMDS server can tell which flow a product's
upstream connection belongs to: a product picks its own source port, which
is how the taps name flows (flows.py).

The daemons run in the foreground, with their pid and log files in a
directory of the run (removed with it), and die with hopsim (SIGTERM when
it exits, and netns.delete_namespaces kills whatever still runs in a
namespace before deleting it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from hopsim.emulate import netns
from hopsim.emulate.build import FAMILIES, Plan, PlanError
from hopsim.emulate.flows import Flow
from hopsim.http import HTTP_PORT, Request
from hopsim.kinds import RelayPolicy
from hopsim.products import PRODUCTS, Form, Setup
from hopsim.routing import Part


class ProductError(PlanError):
    """A product cannot run here: its binary is missing, or it did not start."""

FLOW_MARK = "hopsim-flow"
STOP_GRACE = 0.3  # seconds a daemon gets to exit on SIGTERM
READY_TIMEOUT = 20.0  # seconds a daemon gets to listen (Apache loading the CRS: about 1 s)
TOKEN_HEADERS = ("X-aws-ec2-metadata-token-ttl-seconds", "X-aws-ec2-metadata-token")
OPEN = "# open relay"
NODE = "# from the node"


@dataclass
class ProductRelay:
    """One relay node run by its product's binary."""

    node: str
    setup: Setup
    policy: RelayPolicy  # the node's: the product's defaults, then its own keys
    namespace: str
    listen: dict[int, str]  # family -> the address it listens on (port 80)
    upstream: dict[int, str] = field(default_factory=dict)  # family -> next station (reverse)
    directory: Path = Path()

    @property
    def overrides(self) -> dict[str, object]:
        """The keys the node sets against the product's defaults."""
        base, own = self.setup.policy, self.policy
        return {key: getattr(own, key) for key in ("methods", "adds_xff", "forwards_headers")
                if getattr(own, key) != getattr(base, key)}

    def files(self) -> dict[str, str]:
        """File name -> content, written to `directory`."""
        return _GENERATORS[self.setup.product](self).files

    def commands(self) -> list[list[str]]:
        """The programs to run in the relay's namespace."""
        return _GENERATORS[self.setup.product](self).argv

    def environment(self) -> dict[str, str]:
        return _GENERATORS[self.setup.product](self).env


@dataclass
class _Config:
    files: dict[str, str]
    argv: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# --- which relays, and where they send -----------------------------------------------


def relays(plan: Plan) -> list[ProductRelay]:
    """The product relays of `plan` that some principal's route goes through;
    PlanError for a design hopsim cannot run with real products."""
    topology = plan.topology
    found: dict[str, ProductRelay] = {}
    for name, node in sorted(topology.nodes.items()):
        if node.product is None or node.relay is None:
            continue
        ns = plan.namespace_of(name)
        setup = PRODUCTS[node.product].setup(node.mode)
        found[name] = ProductRelay(
            name, setup, node.relay, ns.name,
            {f: plan.service_address(ns.node, f) for f in FAMILIES},
            directory=_base(plan) / re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    if not found:
        return []
    used: set[str] = set()
    for principal, route in sorted(plan.routes.items()):
        legs = route.legs if route.stations else ()
        for i, leg in enumerate(legs[:-1]):
            relay = leg[-1].actor
            if relay in found:
                used.add(relay)
                for family in FAMILIES:
                    address = plan.destination(leg[-1].node, leg[0].actor, family)
                    if address != found[relay].listen[family]:
                        raise PlanError(
                            f"{topology.name}: {principal} reaches {relay} at {address}, other "
                            f"clients at {found[relay].listen[family]}; a product is run "
                            "listening on one address per family")
                _next_station(plan, found[relay], legs[i + 1], principal, found)
            elif any(legs[j][-1].actor in found for j in range(i)):
                raise PlanError(
                    f"{topology.name}: {principal}'s route reaches {relay} (hopsim's own relay) "
                    f"after the product {legs[i - 1][-1].actor}: hopsim's relay follows a flow "
                    "by its source port, which a product does not keep; put products last")
    for relay in found.values():
        if relay.node not in used:
            continue
        others = [n for n in topology.nodes if n != relay.node and topology.nodes[n].relay
                  and plan.namespace_of(n).name == relay.namespace]
        if others:
            raise PlanError(f"{topology.name}: {relay.node} ({relay.setup.product}) shares its "
                            f"network stack with the relay {others[0]}: both would listen on "
                            "port 80; emulate one relay per stack")
        _GENERATORS[relay.setup.product](relay)  # unsupported keys fail here, before building
    return [found[n] for n in sorted(used)]


def _next_station(plan: Plan, relay: ProductRelay, leg: tuple, principal: str,
                  found: dict[str, ProductRelay]) -> None:
    end = leg[-1]
    nxt = found.get(end.actor)
    if relay.setup.form is Form.ORIGIN:
        if nxt is not None and nxt.setup.form is not Form.ORIGIN:
            raise PlanError(
                f"{plan.topology.name}: {relay.node} is a reverse proxy ({relay.setup.label}); "
                f"it cannot address {end.actor} ({nxt.setup.label}), which needs "
                f"{nxt.setup.form.value}-form requests")
        for family in FAMILIES:
            if not relay.listen.get(family):
                continue
            address = plan.destination(None if end.part is Part.IMDS else end.node, relay.node,
                                       family)
            known = relay.upstream.setdefault(family, address)
            if known != address:
                raise PlanError(
                    f"{plan.topology.name}: {relay.node} ({relay.setup.label}) would need two "
                    f"upstreams ({known}, and {address} for {principal}); a reverse proxy's "
                    "configuration names one")


# --- requests addressed for the products on the way ----------------------------------


def through_products(plan: Plan, flow: Flow) -> bool:
    return any(plan.topology.nodes[leg[-1].actor].product
               for leg in flow.route.legs[:-1] if leg[-1].part is not Part.IMDS)


def addressed(plan: Plan, flow: Flow, request: Request) -> Request:
    """`request` as the principal sends it on the first leg of `flow`: marked
    with the flow, and addressed for each product on the way."""
    if not flow.route.stations or not through_products(plan, flow):
        return request
    legs = flow.route.legs
    separator = "&" if "?" in request.path else "?"
    target = f"{request.path}{separator}{FLOW_MARK}={flow.ports[0]}"
    for j in range(len(legs) - 1, 0, -1):  # legs[j][0] ends leg j-1 and sends leg j
        node = plan.topology.nodes[legs[j][0].actor]
        if not node.product:
            continue
        form = PRODUCTS[node.product].setup(node.mode).form
        if form is Form.ORIGIN:
            continue
        end = legs[j][-1]
        address = plan.destination(None if end.part is Part.IMDS else end.node,
                                   legs[j][0].actor, flow.family)
        url = f"http://{_host(address)}{target}"
        target = url if form is Form.ABSOLUTE else "/?site=" + quote(url, safe="")
    return Request(request.method, target, request.headers, request.body)


def flow_mark(path: str) -> int | None:
    """The flow port a request's path is marked with (at IMDS), if any."""
    values = parse_qs(urlsplit(path).query).get(FLOW_MARK)
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


# --- configurations, one generator per product ----------------------------------------


def _unsupported(relay: ProductRelay, key: str, why: str) -> PlanError:
    return PlanError(f"{relay.node}: {key} on {relay.setup.label} is not emulated with the "
                     f"real binary: {why}")


def _header(relay: ProductRelay, key: str) -> str:
    return f"{NODE}: {key}: {str(relay.overrides[key]).lower()}"


def _methods(relay: ProductRelay) -> tuple[str, ...]:
    return relay.policy.methods or ()


def _nginx(relay: ProductRelay) -> _Config:
    d, extra = relay.directory, []
    own = relay.overrides
    if "methods" in own:
        extra.append(f"if ($request_method !~ ^({'|'.join(_methods(relay))})$) {{ return 405; }}"
                     f"  {_header(relay, 'methods')}")
    if own.get("adds_xff") is True:
        extra.append("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;  "
                     + _header(relay, "adds_xff"))
    if "forwards_headers" in own:
        extra.append(f"proxy_pass_request_headers {'on' if own['forwards_headers'] else 'off'};"
                     f"  {_header(relay, 'forwards_headers')}")
    servers = []
    for family, address in sorted(relay.listen.items()):
        if family not in relay.upstream:
            continue
        inner = "".join(f"            {line}\n" for line in extra)
        servers.append(
            f"    server {{\n        listen {_host(address)}:{HTTP_PORT};\n"
            f"        location / {{\n"
            f"            proxy_pass http://{_host(relay.upstream[family])};  {OPEN}\n"
            f"{inner}        }}\n    }}\n")
    conf = (f"# hopsim: {relay.node}, {relay.setup.title}: nginx's defaults and the line "
            "marked open relay\n"
            f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
            "events {}\nhttp {\n    access_log off;\n"
            + "".join(f"    {kind}_temp_path {d}/{kind};\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + "".join(servers) + "}\n")
    return _Config({"nginx.conf": conf},
                   [["nginx", "-e", f"{d}/error.log", "-p", f"{d}/", "-c", f"{d}/nginx.conf"]])


_APACHE_MODULES = "/usr/lib/apache2/modules"


def _apache(relay: ProductRelay) -> _Config:
    d, setup, own = relay.directory, relay.setup, relay.overrides
    modules = ["mpm_event", "authz_core", "proxy", "proxy_http"]
    lines, inner = [], []
    if setup.product == "modsecurity-crs":
        modules += ["unique_id", "security2"]
        if "methods" in own:
            raise _unsupported(relay, "methods", "the CRS's tx.allowed_methods decide")
        lines += [
            "# ModSecurity as Debian ships it, with the CRS as its package loads it:",
            "Include /etc/modsecurity/modsecurity.conf-recommended",
            "SecRuleEngine On  # the recommended file's DetectionOnly would only log",
            f"SecDataDir {d}",
            f"SecTmpDir {d}",
            f"SecAuditLog {d}/modsec_audit.log",
            "Include /usr/share/modsecurity-crs/owasp-crs.load",
        ]
    if "methods" in own:
        modules.append("allowmethods")
        inner.append(f"AllowMethods {' '.join(_methods(relay))}  {_header(relay, 'methods')}")
    forward = setup.mode == "forward"
    if "adds_xff" in own:
        if own["adds_xff"] and forward:
            modules.append("headers")
            lines.append('RequestHeader set X-Forwarded-For "expr=%{REMOTE_ADDR}"  '
                         + _header(relay, "adds_xff"))
        elif not own["adds_xff"] and not forward:
            lines.append(f"ProxyAddHeaders Off  {_header(relay, 'adds_xff')}")
    if own.get("forwards_headers") is False:
        modules.append("headers")
        lines += [f"RequestHeader unset {h}  {_header(relay, 'forwards_headers')}"
                  for h in TOKEN_HEADERS]
    elif "forwards_headers" in own:
        raise _unsupported(relay, "forwards_headers: true", "it passes them by default")
    conf = [f"# hopsim: {relay.node}, {setup.title}: httpd's defaults and the line marked "
            "open relay",
            f"ServerName {relay.node}", f"PidFile {d}/httpd.pid", f"ErrorLog {d}/error.log",
            f"DefaultRuntimeDir {d}", f"Mutex file:{d} default"]
    conf += [f"LoadModule {m}_module {_APACHE_MODULES}/mod_{m}.so"
             for m in dict.fromkeys(modules)]
    conf += [f"Listen {_host(a)}:{HTTP_PORT}" for f, a in sorted(relay.listen.items())
             if forward or f in relay.upstream]
    conf += lines
    body = "".join(f"    {line}\n" for line in inner)
    if forward:
        conf.append(f"ProxyRequests On  {OPEN}")
        if body:
            conf.append(f'<Proxy "*">\n{body}</Proxy>')
    else:
        for family, address in sorted(relay.listen.items()):
            if family in relay.upstream:
                conf.append(f"<VirtualHost {_host(address)}:{HTTP_PORT}>\n"
                            f"    ProxyPass / http://{_host(relay.upstream[family])}/  {OPEN}\n"
                            + (f'    <Location "/">\n    {body}    </Location>\n' if body else "")
                            + "</VirtualHost>")
    text = "\n".join(conf) + "\n"
    # Apache takes no comment after a directive: keep the marks on lines of their own.
    text = "\n".join(_own_line(line) for line in text.splitlines()) + "\n"
    return _Config({"httpd.conf": text},
                   [["apache2", "-f", f"{d}/httpd.conf", "-DFOREGROUND"]])


def _own_line(line: str) -> str:
    """`Directive  # mark` as Apache needs it: the mark on the line above."""
    for mark in (OPEN, NODE):
        head, found, tail = line.partition(f"  {mark}")
        if found:
            indent = head[:len(head) - len(head.lstrip())]
            return f"{indent}{mark}{tail}\n{head}"
    head, found, tail = line.partition("  # ")
    if found:
        indent = head[:len(head) - len(head.lstrip())]
        return f"{indent}# {tail}\n{head}"
    return line


def _squid(relay: ProductRelay) -> _Config:
    d, own = relay.directory, relay.overrides
    lines = [f"# hopsim: {relay.node}, {relay.setup.title}: Squid's defaults and the lines "
             "marked open relay"]
    reverse = relay.setup.mode == "reverse"
    for family, address in sorted(relay.listen.items()):
        if reverse and family not in relay.upstream:
            continue
        port = f"http_port {_host(address)}:{HTTP_PORT}"
        if reverse:
            lines += [f"{port} accel no-vhost defaultsite={_host(relay.upstream[family])} "
                      f"name=ipv{family}  {OPEN}",
                      f"cache_peer {relay.upstream[family]} parent {HTTP_PORT} 0 no-query "
                      f"originserver name=imds{family}  {OPEN}",
                      f"acl ipv{family} myportname ipv{family}",
                      f"cache_peer_access imds{family} allow ipv{family}",
                      f"cache_peer_access imds{family} deny all"]
        else:
            lines.append(port)
    if reverse:
        lines.append("never_direct allow all")
    if "methods" in own:
        lines += [f"acl relayed_methods method {' '.join(_methods(relay))}",
                  f"http_access deny !relayed_methods  {_header(relay, 'methods')}"]
    lines.append(f"http_access allow all  {OPEN}")
    if own.get("adds_xff") is False:
        lines.append(f"forwarded_for delete  {_header(relay, 'adds_xff')}")
    if own.get("forwards_headers") is False:
        lines += [f"request_header_access {h} deny all  {_header(relay, 'forwards_headers')}"
                  for h in TOKEN_HEADERS]
    lines += [f"pid_filename {d}/squid.pid", f"cache_log {d}/cache.log", "access_log none",
              f"coredump_dir {d}", f"visible_hostname {relay.node}"]
    return _Config({"squid.conf": "\n".join(lines) + "\n"},
                   [["squid", "-N", "-f", f"{d}/squid.conf"]])


def _haproxy(relay: ProductRelay) -> _Config:
    d, own = relay.directory, relay.overrides
    lines = [f"# hopsim: {relay.node}, {relay.setup.title}: the defaults of Debian's "
             "haproxy.cfg and the lines marked open relay",
             "global", f"    pidfile {d}/haproxy.pid", "defaults", "    mode http",
             "    timeout connect 5000", "    timeout client 50000", "    timeout server 50000"]
    for family, address in sorted(relay.listen.items()):
        if family not in relay.upstream:
            continue
        lines += [f"frontend open{family}", f"    bind {_host(address)}:{HTTP_PORT}"]
        if "methods" in own:
            methods = " ".join(_methods(relay))
            lines.append(f"    http-request deny deny_status 405 unless {{ method {methods} }}"
                         f"  {_header(relay, 'methods')}")
        if own.get("adds_xff") is True:
            lines.append(f"    option forwardfor  {_header(relay, 'adds_xff')}")
        if own.get("forwards_headers") is False:
            lines += [f"    http-request del-header {h}  {_header(relay, 'forwards_headers')}"
                      for h in TOKEN_HEADERS]
        lines += [f"    default_backend imds{family}", f"backend imds{family}",
                  f"    server imds {_host(relay.upstream[family])}:{HTTP_PORT}  {OPEN}"]
    return _Config({"haproxy.cfg": "\n".join(lines) + "\n"},
                   [["haproxy", "-db", "-f", f"{d}/haproxy.cfg"]])


def _tinyproxy(relay: ProductRelay) -> _Config:
    d, own = relay.directory, relay.overrides
    if "methods" in own:
        raise _unsupported(relay, "methods", "tinyproxy has no way to refuse a method")
    lines = [f"# hopsim: {relay.node}, {relay.setup.title}: the settings of Debian's "
             "tinyproxy.conf, less its Allow lines",
             f"Port {HTTP_PORT}", "Timeout 600", "MaxClients 100", 'ViaProxyName "tinyproxy"',
             'DefaultErrorFile "/usr/share/tinyproxy/default.html"',
             f'PidFile "{d}/tinyproxy.pid"', f'LogFile "{d}/tinyproxy.log"', "LogLevel Info"]
    lines += [f"Listen {a}" for _, a in sorted(relay.listen.items())]
    lines.append(f"{OPEN}: no Allow line, so every client may use it")
    if own.get("adds_xff") is True:
        # tinyproxy cannot put the client's address in a header; IMDS looks
        # only for the header's presence.
        lines.append(f'AddHeader "X-Forwarded-For" "unknown"  {_header(relay, "adds_xff")}')
    if own.get("forwards_headers") is False:
        lines.append(f'Anonymous "Host"  {_header(relay, "forwards_headers")}')
    text = "\n".join(_own_line(line) for line in lines) + "\n"
    return _Config({"tinyproxy.conf": text}, [["tinyproxy", "-d", "-c", f"{d}/tinyproxy.conf"]])


def _php(relay: ProductRelay) -> _Config:
    d, own = relay.directory, relay.overrides
    lines = ["<?php",
             f"// hopsim: {relay.node}, {relay.setup.title}: the article's SSRF app, which",
             "// fetches any URL given in ?site= and echoes it (the open relay)."]
    options = []
    if "methods" in own:
        allowed = ", ".join(f"'{m}'" for m in _methods(relay))
        lines += [f"// {NODE[2:]}: methods",
                  f"if (!in_array($_SERVER['REQUEST_METHOD'], [{allowed}])) {{ "
                  "http_response_code(405); exit; }"]
    if own.get("forwards_headers") is True:
        lines += [f"// {NODE[2:]}: forwards_headers: true",
                  "$headers = [];",
                  "foreach (getallheaders() as $name => $value) {",
                  "    if (strcasecmp($name, 'Host') != 0) { $headers[] = \"$name: $value\"; }",
                  "}"]
        options.append("'header' => $headers")
    if own.get("adds_xff") is True:
        lines += [f"// {NODE[2:]}: adds_xff: true",
                  "$xff = ['X-Forwarded-For: ' . $_SERVER['REMOTE_ADDR']];"]
        options.append("'header' => array_merge($headers ?? [], $xff)")
        if "'header' => $headers" in options:
            options.remove("'header' => $headers")
    if options:
        lines.append("$context = stream_context_create(['http' => [" + ", ".join(options)
                     + "]]);")
        lines.append("echo file_get_contents($_GET['site'], false, $context);")
    else:
        lines.append("echo file_get_contents($_GET['site']);")
    argv = [["php", "-S", f"{_host(a)}:{HTTP_PORT}", f"{d}/app.php"]
            for _, a in sorted(relay.listen.items())]
    # The built-in server answers one request at a time unless given workers.
    return _Config({"app.php": "\n".join(lines) + "\n"}, argv,
                   {"PHP_CLI_SERVER_WORKERS": "4"})


_GENERATORS = {"nginx": _nginx, "apache": _apache, "modsecurity-crs": _apache,
               "squid": _squid, "haproxy": _haproxy, "tinyproxy": _tinyproxy, "php-ssrf": _php}


# --- dry run, start, stop ---------------------------------------------------------


def commands(relays: list[ProductRelay]) -> list[str]:
    """The shell commands that write each configuration and start each daemon."""
    out = []
    for relay in relays:
        out.append(f"mkdir -p {relay.directory}")
        for name, text in relay.files().items():
            out.append(f"cat > {relay.directory / name} <<'EOF'\n{text}EOF")
        env = "".join(f"{k}={v} " for k, v in relay.environment().items())
        out += [f"ip netns exec {relay.namespace} {env}{' '.join(argv)} &"
                for argv in relay.commands()]
    return out


def missing(relays: list[ProductRelay]) -> str | None:
    """Why these products cannot run here, with the fix; or None."""
    for relay in relays:
        product = PRODUCTS[relay.setup.product]
        for argv in relay.commands():
            if not _which(argv[0]):
                return (f"{relay.node} is {product.name}, whose binary '{argv[0]}' is not "
                        f"installed: apt-get install {' '.join(product.packages)}")
    return None


def _which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: SIGTERM when hopsim's thread ends, whatever ends it."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Daemon:
    """A product's processes in one namespace."""

    relay: ProductRelay
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> None:
        relay = self.relay
        base = relay.directory.parent
        try:
            base.mkdir(mode=0o755)
        except FileExistsError:
            # The run's own (another relay made it), never one planted in /tmp.
            if base.is_symlink() or base.stat().st_uid != os.geteuid():
                raise ProductError(f"{base} exists and is not this run's: remove it") from None
        relay.directory.mkdir()
        # Products drop root for their workers (nginx: nobody, Squid: proxy):
        # they write their logs and temporary files here.
        relay.directory.chmod(0o777)
        for name, text in relay.files().items():
            (relay.directory / name).write_text(text)
        env = {**os.environ, **relay.environment()}
        for i, argv in enumerate(relay.commands()):
            log = open(relay.directory / f"stderr{i}.log", "wb")  # noqa: SIM115
            with log:
                self.processes.append(subprocess.Popen(
                    [netns.tool("ip"), "netns", "exec", relay.namespace,
                     _which(argv[0]) or argv[0], *argv[1:]],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True, preexec_fn=_die_with_parent))

    async def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until it accepts connections on every address, or say why not."""
        deadline = time.monotonic() + timeout
        for family, address in sorted(self.relay.listen.items()):
            while not _accepts(self.relay.namespace, family, address):
                exited = [p for p in self.processes if p.poll() is not None]
                if exited or time.monotonic() > deadline:
                    raise ProductError(self._failure(exited))
                await asyncio.sleep(0.05)

    def _failure(self, exited: list[subprocess.Popen]) -> str:
        relay = self.relay
        what = (f"exited with {exited[0].returncode}" if exited
                else f"not listening after {READY_TIMEOUT:g} s")
        logs = sorted(relay.directory.glob("*.log"))
        tail = []
        for log in logs:
            lines = [line for line in log.read_text(errors="replace").splitlines()
                     if line.strip()]
            tail += [f"  {log.name}: {line}" for line in lines[-3:]]
        return (f"{relay.node} ({relay.setup.label}) {what}; its configuration and logs are "
                f"in {relay.directory}\n" + "\n".join(tail))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        # Nothing is left to finish: a product that takes longer (Squid waits
        # for its clients) is killed, with every process of its group.
        deadline = time.monotonic() + STOP_GRACE
        for process in self.processes:
            try:
                process.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _accepts(namespace: str, family: int, address: str) -> bool:
    sock = netns.socket_in(namespace, socket.AF_INET6 if family == 6 else socket.AF_INET)
    try:
        sock.settimeout(0.2)
        sock.connect((address, HTTP_PORT))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _base(plan: Plan) -> Path:
    """Where a run's product configurations and logs go."""
    return Path(tempfile.gettempdir()) / f"{plan.prefix}products"


def remove_directories(plan: Plan) -> None:
    shutil.rmtree(_base(plan), ignore_errors=True)
