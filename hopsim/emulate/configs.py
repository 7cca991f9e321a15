"""Each product's configuration, generated from its relay node: one
generator per product (nginx, Apache with or without ModSecurity, Squid,
HAProxy, tinyproxy, the PHP SSRF app; and the L4 relays: socat, sshd,
HAProxy mode tcp, nginx stream, microsocks, danted), each writing the
product's defaults, the one line that makes it an open relay (`# open
relay`) and a line for each key the node sets against the default (`# from
the node`). Pure: products.py finds the relays (ProductRelay, here beside the
generators that read it), writes the files and runs the binaries.

Every product listens on port 80 of its relay's address (sshd and the SOCKS
servers too): the emulator's clients and readiness checks use one port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hopsim.emulate.build import PlanError
from hopsim.http import HTTP_PORT
from hopsim.imds import TOKEN_HEADER, TTL_HEADER
from hopsim.kinds import RelayPolicy
from hopsim.products import Setup

TOKEN_HEADERS = (TTL_HEADER, TOKEN_HEADER)  # what a relay must pass on for IMDSv2
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
    devices: tuple[str, ...] = ()  # its namespace's interfaces (dante's external:)
    # sshd serves every ssh relay of one stack: the first runs it, for all of them.
    runs_daemon: bool = True
    partners: list[ProductRelay] = field(default_factory=list)  # the ssh relays it serves
    served_by: ProductRelay | None = None  # the ssh relay whose sshd serves this one
    uid: int | None = None  # the uid it runs as, when an owner rule names it (else root)

    def ssh_addresses(self) -> list[str]:
        """The addresses sshd listens on: its own and its partners', once each."""
        found = [a for r in (self, *self.partners) for _, a in sorted(r.listen.items())]
        return list(dict.fromkeys(found))

    @property
    def key_directory(self) -> Path:
        """Where the client's key for this relay's sshd is."""
        return (self.served_by or self).directory

    @property
    def overrides(self) -> dict[str, object]:
        """The keys the node sets against the product's defaults."""
        base, own = self.setup.policy, self.policy
        return {key: getattr(own, key) for key in ("methods", "adds_xff", "forwards_headers")
                if getattr(own, key) != getattr(base, key)}

    def files(self) -> dict[str, str]:
        """File name -> content, written to `directory`."""
        return GENERATORS[self.setup.product](self).files

    def commands(self) -> list[list[str]]:
        """The programs to run in the relay's namespace (as its own uid, where an
        owner rule must tell its sockets from the host's)."""
        argv = GENERATORS[self.setup.product](self).argv
        if self.uid is None:
            return argv
        run_as = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
        return [[*run_as, *a] for a in argv]

    def environment(self) -> dict[str, str]:
        return GENERATORS[self.setup.product](self).env

    def preparations(self) -> list[list[str]]:
        """The commands run to completion before its daemons (ssh's keys)."""
        return GENERATORS[self.setup.product](self).prepare


@dataclass
class Config:
    files: dict[str, str]
    argv: list[list[str]]  # the daemons, run side by side
    env: dict[str, str] = field(default_factory=dict)
    prepare: list[list[str]] = field(default_factory=list)  # run to completion first (keys)


def host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# --- configurations, one generator per product ----------------------------------------


def _unsupported(relay: ProductRelay, key: str, why: str) -> PlanError:
    return PlanError(f"{relay.node}: {key} on {relay.setup.label} is not emulated with the "
                     f"real binary: {why}")


def _header(relay: ProductRelay, key: str) -> str:
    return f"{NODE}: {key}: {str(relay.overrides[key]).lower()}"


def _methods(relay: ProductRelay) -> tuple[str, ...]:
    return relay.policy.methods or ()


def _nginx(relay: ProductRelay) -> Config:
    if relay.setup.mode == "stream":
        return _nginx_stream(relay)
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
            f"    server {{\n        listen {host(address)}:{HTTP_PORT};\n"
            f"        location / {{\n"
            f"            proxy_pass http://{host(relay.upstream[family])};  {OPEN}\n"
            f"{inner}        }}\n    }}\n")
    conf = (f"# hopsim: {relay.node}, {relay.setup.title}: nginx's defaults and the line "
            "marked open relay\n"
            f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
            "events {}\nhttp {\n    access_log off;\n"
            + "".join(f"    {kind}_temp_path {d}/{kind};\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + "".join(servers) + "}\n")
    return Config({"nginx.conf": conf},
                   [["nginx", "-e", f"{d}/error.log", "-p", f"{d}/", "-c", f"{d}/nginx.conf"]])


_APACHE_MODULES = "/usr/lib/apache2/modules"


def _apache(relay: ProductRelay) -> Config:
    d, setup, own = relay.directory, relay.setup, relay.overrides
    modules = ["mpm_event", "authz_core", "proxy", "proxy_http"]
    lines, inner = [], []
    if setup.product == "modsecurity-crs":
        modules += ["unique_id", "security2"]
        lines += [
            "# ModSecurity as Debian ships it, with the CRS as its package loads it:",
            "Include /etc/modsecurity/modsecurity.conf-recommended",
            "SecRuleEngine On  # the recommended file's DetectionOnly would only log",
            f"SecDataDir {d}",
            f"SecTmpDir {d}",
            f"SecAuditLog {d}/modsec_audit.log",
        ]
        if "methods" in own:  # crs-setup.conf's rule 900200, ahead of the CRS's own
            lines.append(f"SecAction \"id:900200,phase:1,nolog,pass,t:none,setvar:'"
                         f"tx.allowed_methods={' '.join(_methods(relay))}'\"  "
                         + _header(relay, "methods"))
        lines.append("Include /usr/share/modsecurity-crs/owasp-crs.load")
    if "methods" in own and setup.product != "modsecurity-crs":
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
    conf += [f"Listen {host(a)}:{HTTP_PORT}" for f, a in sorted(relay.listen.items())
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
                conf.append(f"<VirtualHost {host(address)}:{HTTP_PORT}>\n"
                            f"    ProxyPass / http://{host(relay.upstream[family])}/  {OPEN}\n"
                            + (f'    <Location "/">\n    {body}    </Location>\n' if body else "")
                            + "</VirtualHost>")
    text = "\n".join(conf) + "\n"
    # Apache takes no comment after a directive: keep the marks on lines of their own.
    text = "\n".join(_own_line(line) for line in text.splitlines()) + "\n"
    return Config({"httpd.conf": text},
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


def _squid(relay: ProductRelay) -> Config:
    d, own = relay.directory, relay.overrides
    lines = [f"# hopsim: {relay.node}, {relay.setup.title}: Squid's defaults and the lines "
             "marked open relay"]
    reverse = relay.setup.mode == "reverse"
    for family, address in sorted(relay.listen.items()):
        if reverse and family not in relay.upstream:
            continue
        port = f"http_port {host(address)}:{HTTP_PORT}"
        if reverse:
            lines += [f"{port} accel no-vhost defaultsite={host(relay.upstream[family])} "
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
    return Config({"squid.conf": "\n".join(lines) + "\n"},
                   [["squid", "-N", "-f", f"{d}/squid.conf"]])


def _haproxy(relay: ProductRelay) -> Config:
    if relay.setup.mode == "tcp":
        return _haproxy_tcp(relay)
    d, own = relay.directory, relay.overrides
    lines = [f"# hopsim: {relay.node}, {relay.setup.title}: the defaults of Debian's "
             "haproxy.cfg and the lines marked open relay",
             "global", f"    pidfile {d}/haproxy.pid", "defaults", "    mode http",
             "    timeout connect 5000", "    timeout client 50000", "    timeout server 50000"]
    for family, address in sorted(relay.listen.items()):
        if family not in relay.upstream:
            continue
        lines += [f"frontend open{family}", f"    bind {host(address)}:{HTTP_PORT}"]
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
                  f"    server imds {host(relay.upstream[family])}:{HTTP_PORT}  {OPEN}"]
    return Config({"haproxy.cfg": "\n".join(lines) + "\n"},
                   [["haproxy", "-db", "-f", f"{d}/haproxy.cfg"]])


def _tinyproxy(relay: ProductRelay) -> Config:
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
    return Config({"tinyproxy.conf": text}, [["tinyproxy", "-d", "-c", f"{d}/tinyproxy.conf"]])


def _php(relay: ProductRelay) -> Config:
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
    argv = [["php", "-S", f"{host(a)}:{HTTP_PORT}", f"{d}/app.php"]
            for _, a in sorted(relay.listen.items())]
    # The built-in server answers one request at a time unless given workers.
    return Config({"app.php": "\n".join(lines) + "\n"}, argv,
                   {"PHP_CLI_SERVER_WORKERS": "4"})


# --- L4 relays: they pass the bytes; only their upstream and who may use them differ ----

# Where an L4 port forward's upstream points when its node says block_imds:
# not IMDS (as the fix is written), and nothing listens there, so the relay
# closes the client's connection.
NOWHERE = {4: "127.0.0.1", 6: "::1"}
DISCARD_PORT = 9
SSH_USER = "nobody"  # uid 65534, shell /usr/sbin/nologin: ssh -N needs no shell
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def _upstream(relay: ProductRelay, family: int) -> tuple[str, int, str]:
    """(address, port, mark) of a port forward's upstream for `family`."""
    if relay.policy.refuses_imds:
        return NOWHERE[family], DISCARD_PORT, f"  {NODE}: block_imds: an upstream that is not IMDS"
    return relay.upstream[family], HTTP_PORT, f"  {OPEN}"


def _forwarded(relay: ProductRelay) -> list[tuple[int, str]]:
    """(family, listen address) of a port forward: where it has an upstream."""
    return [(f, a) for f, a in sorted(relay.listen.items()) if f in relay.upstream]


def _title(relay: ProductRelay, what: str) -> str:
    return f"# hopsim: {relay.node}, {relay.setup.title}: {what}"


def _socat(relay: ProductRelay) -> Config:
    argv = []
    for family, address in _forwarded(relay):
        up, port, _ = _upstream(relay, family)
        argv.append(["socat", f"TCP{family}-LISTEN:{HTTP_PORT},bind={address},fork,reuseaddr",
                     f"TCP{family}:{host(up)}:{port}"])
    return Config({}, argv)


def _haproxy_tcp(relay: ProductRelay) -> Config:
    d = relay.directory
    lines = [_title(relay, "Debian's haproxy.cfg defaults in mode tcp and the lines marked "
                    "open relay"),
             "global", f"    pidfile {d}/haproxy.pid", "defaults", "    mode tcp",
             "    timeout connect 5000", "    timeout client 50000", "    timeout server 50000"]
    for family, address in _forwarded(relay):
        up, port, mark = _upstream(relay, family)
        lines += [f"frontend relay{family}", f"    bind {host(address)}:{HTTP_PORT}",
                  f"    default_backend imds{family}", f"backend imds{family}",
                  f"    server imds {host(up)}:{port}{mark}"]
    return Config({"haproxy.cfg": "\n".join(lines) + "\n"},
                  [["haproxy", "-db", "-f", f"{d}/haproxy.cfg"]])


def _nginx_stream(relay: ProductRelay) -> Config:
    d = relay.directory
    servers = []
    for family, address in _forwarded(relay):
        up, port, mark = _upstream(relay, family)
        servers.append(f"    server {{\n        listen {host(address)}:{HTTP_PORT};\n"
                       f"        proxy_pass {host(up)}:{port};{mark}\n    }}\n")
    conf = (_title(relay, "nginx's defaults, the stream module and the line marked open "
                   "relay") + "\n"
            f"load_module {STREAM_MODULE};\n"
            f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
            "events {}\nstream {\n" + "".join(servers) + "}\n")
    return Config({"nginx.conf": conf},
                  [["nginx", "-e", f"{d}/error.log", "-p", f"{d}/", "-c", f"{d}/nginx.conf"]])


def _microsocks(relay: ProductRelay) -> Config:
    if relay.policy.refuses_imds:
        raise _unsupported(relay, "block_imds", "microsocks has no rule on destinations "
                           "(bind it to loopback, require -u/-P, or filter on the host)")
    # Its defaults: no -u/-P (no authentication), any destination: the open relay.
    return Config({}, [["microsocks", "-i", address, "-p", str(HTTP_PORT)]
                       for _, address in sorted(relay.listen.items())])


def _dante(relay: ProductRelay) -> Config:
    d = relay.directory
    lines = [_title(relay, "client pass and socks pass from anywhere to anywhere (the open "
                    "relay)"),
             "logoutput: stderr"]
    lines += [f"internal: {a} port = {HTTP_PORT}" for _, a in sorted(relay.listen.items())]
    # Outgoing connections leave by the interface the kernel routes them out of.
    lines += [f"external: {device}" for device in relay.devices]
    lines += ["external.rotation: route", "clientmethod: none", "socksmethod: none",
              "user.privileged: root", "user.unprivileged: nobody",
              "client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }",
              "client pass { from: ::/0 to: ::/0 }"]
    if relay.policy.refuses_imds:
        lines += [f"socks block {{ from: 0.0.0.0/0 to: 169.254.169.254/32 }}  {NODE}: block_imds",
                  f"socks block {{ from: ::/0 to: fd00:ec2::254/128 }}  {NODE}: block_imds"]
    lines += [f"socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}  {OPEN}",
              f"socks pass {{ from: ::/0 to: ::/0 }}  {OPEN}"]
    text = "\n".join(_own_line(line) for line in lines) + "\n"
    return Config({"danted.conf": text},
                  [["danted", "-f", f"{d}/danted.conf", "-p", f"{d}/danted.pid"]])


def _sshd(relay: ProductRelay) -> Config:
    """sshd with Debian 12's sshd_config (less its Include), its host key and
    the client's authorized key in the run's directory, and a private /run
    for its privilege separation directory (/run/sshd is never made here)."""
    d = relay.directory
    if not relay.runs_daemon:  # served by the sshd of its stack's first ssh relay
        return Config({}, [])
    lines = [_title(relay, "Debian 12's sshd_config (AllowTcpForwarding and PermitOpen at "
                    "their defaults: yes, any)"),
             "KbdInteractiveAuthentication no", "UsePAM yes", "X11Forwarding yes",
             "PrintMotd no", "AcceptEnv LANG LC_*", "Subsystem sftp /usr/lib/openssh/sftp-server",
             "# where this run keeps its files:",
             f"HostKey {d}/host_key", f"PidFile {d}/sshd.pid",
             f"AuthorizedKeysFile {d}/authorized_keys", "StrictModes no"]
    lines += [f"ListenAddress {host(a)}:{HTTP_PORT}" for a in relay.ssh_addresses()]
    if relay.policy.refuses_imds:
        lines.append(f"AllowTcpForwarding no  {NODE}: block_imds")
    else:
        lines.append(f"{OPEN}: AllowTcpForwarding and PermitOpen left at their defaults "
                     "(yes, any)")
    text = "\n".join(_own_line(line) for line in lines) + "\n"
    daemon = [[
        "unshare", "-m", "--propagation", "private", "sh", "-c",
        "mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && "
        f"exec /usr/sbin/sshd -D -e -f {d}/sshd_config"]]
    prepare = [["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{key}"]
               for key in ("host_key", "user_key")]
    prepare.append(["cp", f"{d}/user_key.pub", f"{d}/authorized_keys"])
    return Config({"sshd_config": text}, daemon, prepare=prepare)


GENERATORS = {"nginx": _nginx, "apache": _apache, "modsecurity-crs": _apache,
               "squid": _squid, "haproxy": _haproxy, "tinyproxy": _tinyproxy, "php-ssrf": _php,
              "socat": _socat, "ssh": _sshd, "microsocks": _microsocks, "dante": _dante}
