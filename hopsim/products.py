"""Real relays by product: every default that decides the exchange, one table.

A `proxy`, `waf` or `ssrf` node may name the product it is (`product: nginx`)
and, for a product that is both, its `mode` (reverse or forward). The product
sets the relay's policy: the methods it passes and its answer to the others,
whether it adds X-Forwarded-For, whether it passes the client's headers,
whether it sends the client's method at all. Keys written on the node still
override (a user's nginx with `proxy_set_header X-Forwarded-For`:
`adds_xff: true`).

Each default below has its source (the product's documentation) and was
measured on Debian 12's package, with the product's defaults plus the one
misconfiguration that makes it an open relay, by `hopsim products --verify`
(docs/products.md holds its output). Where a source and the binary disagree,
the binary is right and the table follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hopsim.kinds import ANY_METHOD, PASS_BYTES, RelayPolicy


class Form(Enum):
    """How a request must be addressed to the product for it to relay it."""

    ORIGIN = "origin"  # PUT /latest/api/token: the upstream is in its configuration
    ABSOLUTE = "absolute"  # PUT http://169.254.169.254/latest/api/token: a forward proxy
    SITE = "site"  # GET /?site=http://169.254.169.254/...: the SSRF app's parameter
    SOCKS = "socks"  # SOCKS5 CONNECT 169.254.169.254:80, then PUT /latest/api/token


@dataclass(frozen=True)
class Directive:
    """What closes a path, in the product's own configuration language."""

    change: str  # the hopsim change it stands for, as `hopsim fix` writes it:
    #              "adds_xff=true", "methods=GET,HEAD" (any list without PUT)
    text: str  # the product's own line(s); {methods} and the like filled by `written`
    where: str  # where it goes: "the location block that proxies (nginx.conf)"
    source: str  # the product's documentation that says so

    @property
    def key(self) -> str:
        return self.change.partition("=")[0]

    def matches(self, key: str, value: object) -> bool:
        """Whether this directive makes the change `key` = `value` (for
        methods: any list that leaves PUT out)."""
        if key != self.key:
            return False
        if key == "methods":
            return isinstance(value, (list, tuple)) and "PUT" not in value
        return self.change.partition("=")[2] == str(value).lower()

    def written(self, value: object = None) -> str:
        """The text with the change's value in the product's syntax: {methods}
        (space-separated), {methods_pipe}, {methods_quoted}; any other brace is
        the product's own (nginx blocks, dante rules)."""
        methods = list(value) if isinstance(value, (list, tuple)) else \
            self.change.partition("=")[2].split(",")
        return (self.text.replace("{methods}", " ".join(methods))
                .replace("{methods_pipe}", "|".join(methods))
                .replace("{methods_quoted}", ", ".join(f"'{m}'" for m in methods)))


@dataclass(frozen=True)
class Setup:
    """One product in one mode: what it does by default, and why we say so."""

    product: str
    mode: str | None  # None: the product has one way of relaying (the SSRF app)
    kind: str  # the node kind it is
    title: str  # what it is, with the version measured
    policy: RelayPolicy
    form: Form
    open_relay: str  # the one misconfiguration that makes it relay to IMDS
    sources: tuple[str, ...]  # where each default is documented
    directives: tuple[Directive, ...] = ()  # the fixes in its own words, each proven

    def directive(self, key: str, value: object) -> Directive | None:
        """The product's own way of making the change `key` = `value`, if it has one."""
        return next((d for d in self.directives if d.matches(key, value)), None)

    @property
    def label(self) -> str:
        return f"{self.product} ({self.mode})" if self.mode else self.product


@dataclass(frozen=True)
class Product:
    name: str
    kind: str
    packages: tuple[str, ...]  # Debian packages that bring its binary
    binary: str  # the program hopsim emulate runs
    setups: tuple[Setup, ...]
    default_mode: str | None = None  # the mode taken when a node names none

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(s.mode for s in self.setups if s.mode)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The node kinds it can be, in table order (nginx: a proxy or an L4 relay)."""
        return tuple(dict.fromkeys(s.kind for s in self.setups))

    def of_kind(self, kind: str) -> tuple[Setup, ...]:
        """Its setups for a node of `kind`: the L4 ones for a relay, the L7 ones
        for a proxy, waf or ssrf node (the L7 kinds differ only in defaults)."""
        l4 = kind == "relay"
        return tuple(s for s in self.setups if (s.kind == "relay") == l4)

    def setup(self, mode: str | None, kind: str | None = None) -> Setup:
        """The setup for `mode` (None: the default mode of that kind, or its only one)."""
        candidates = self.of_kind(kind) if kind else self.setups
        if mode is None:
            if len(candidates) == 1:
                return candidates[0]
            mode = self.default_mode
        for s in candidates:
            if s.mode == mode or len(candidates) == 1:
                return s
        raise KeyError(f"{self.name} has no mode {mode!r}")


# What PHP's file_get_contents does: GET, with none of the client's headers.
_FETCH = RelayPolicy(ANY_METHOD, adds_xff=False, forwards_headers=False, sends_method="GET")
_PASS_ALL = RelayPolicy(ANY_METHOD, adds_xff=False, forwards_headers=True)
_PASS_ALL_XFF = RelayPolicy(ANY_METHOD, adds_xff=True, forwards_headers=True)

_NGINX_XFF = ("nginx docs, ngx_http_proxy_module, proxy_set_header: by default only "
              "Host and Connection are redefined; X-Forwarded-For is sent only when "
              "configured ($proxy_add_x_forwarded_for)")
_APACHE_XFF = ("Apache httpd 2.4 docs, mod_proxy, 'Reverse Proxy Request Headers': "
               "in reverse-proxy mode mod_proxy_http adds X-Forwarded-For, "
               "X-Forwarded-Host and X-Forwarded-Server (ProxyAddHeaders On, the default); "
               "the directive applies to reverse proxying only")
_SQUID_XFF = ("Squid docs, forwarded_for: default 'on' adds the client's address; 'off' "
              "sends 'unknown'; only 'delete' or 'transparent' omit the header")

# The fixes in each product's own words. Each is what hopsim emulate writes
# into the product's real configuration for the hopsim change (emulate/configs.py),
# so `hopsim fix --prove` and tests/test_products.py run the binary with it.
_NGINX = (
    Directive("adds_xff=true", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
              "in the location block that proxy_passes to 169.254.169.254 (nginx.conf)",
              "nginx docs, ngx_http_proxy_module, proxy_set_header and the variable "
              "$proxy_add_x_forwarded_for"),
    Directive("methods=GET,HEAD", "if ($request_method !~ ^({methods_pipe})$) { return 405; }",
              "in the location block that proxy_passes to 169.254.169.254 (nginx.conf)",
              "nginx docs, ngx_http_rewrite_module, if and return; ngx_http_core_module, "
              "$request_method"),
)
_ALLOW_METHODS = ("Apache httpd 2.4 docs, mod_allowmethods, AllowMethods: other methods "
                  "get 405")
_PROXY_ADD_HEADERS = Directive(
    "adds_xff=true", "ProxyAddHeaders On",
    "in the VirtualHost that ProxyPasses (httpd.conf); On is the default: delete a "
    "ProxyAddHeaders Off", _APACHE_XFF)
_APACHE_REVERSE = (
    _PROXY_ADD_HEADERS,
    Directive("methods=GET,HEAD", "AllowMethods {methods}",
              'in a <Location "/"> of the VirtualHost that ProxyPasses, with LoadModule '
              "allowmethods_module (httpd.conf)", _ALLOW_METHODS),
)
_APACHE_FORWARD = (
    Directive("adds_xff=true", 'RequestHeader set X-Forwarded-For "expr=%{REMOTE_ADDR}"',
              "at server level, with LoadModule headers_module (httpd.conf): ProxyAddHeaders "
              "applies to reverse proxying only",
              "Apache httpd 2.4 docs, mod_headers, RequestHeader set with an expr= value"),
    Directive("methods=GET,HEAD", "AllowMethods {methods}",
              'in the <Proxy "*"> block, with LoadModule allowmethods_module (httpd.conf)',
              _ALLOW_METHODS),
)
_SQUID = (
    Directive("adds_xff=true", "forwarded_for on",
              "squid.conf; on is the default: delete a forwarded_for delete or transparent",
              _SQUID_XFF),
    Directive("methods=GET,HEAD", "acl relayed_methods method {methods}\n"
              "http_access deny !relayed_methods",
              "squid.conf, above http_access allow all (the first http_access line that "
              "matches decides)",
              "Squid docs, acl (type method) and http_access: the first matching line wins"),
)
_HAPROXY = (
    Directive("adds_xff=true", "option forwardfor",
              "in the frontend (or defaults) section that serves the clients (haproxy.cfg)",
              "HAProxy 2.6 configuration manual, option forwardfor"),
    Directive("methods=GET,HEAD", "http-request deny deny_status 405 unless { method {methods} }",
              "in the frontend section that serves the clients (haproxy.cfg)",
              "HAProxy 2.6 configuration manual, http-request deny (deny_status) and the "
              "method fetch"),
)
_TINYPROXY = (
    Directive("adds_xff=true", 'AddHeader "X-Forwarded-For" "unknown"',
              "tinyproxy.conf (tinyproxy cannot write the client's address there; IMDS "
              "refuses a token PUT that carries the header at all)",
              "tinyproxy.conf(5), AddHeader: a header added to every request sent upstream"),
)  # no directive refuses a method: tinyproxy passes every one
_CRS = (
    _PROXY_ADD_HEADERS,
    Directive("methods=GET,HEAD,POST,OPTIONS",
              "SecAction \"id:900200,phase:1,nolog,pass,t:none,"
              "setvar:'tx.allowed_methods={methods}'\"",
              "crs-setup.conf, before the CRS rules are included (Debian: "
              "/etc/modsecurity/crs/crs-setup.conf)",
              "OWASP CRS 3.3, crs-setup.conf.example: rule 900200 sets tx.allowed_methods; "
              "rule 911100 blocks every other method (403)"),
)
# The L4 relays: each passes the bytes it is given (any method, every header,
# no X-Forwarded-For) and opens its own connection upstream [M].
_SOCAT = ("socat(1): TCP-LISTEN:<port> accepts a TCP connection and, with fork, handles "
          "each in a child; TCP:<host>:<port> connects to the host; socat copies the bytes "
          "both ways, unchanged")
_SOCAT_CLOSES = Directive(
    "block_imds=true", "TCP:<a host that is not 169.254.169.254>:<port> as the second "
    "address, or no forward at all", "socat's command line (its unit file, or the "
    "container's command)", "socat(1): the second address is where every accepted "
    "connection is sent")
_SSHD_FORWARDING = ("sshd_config(5), AllowTcpForwarding: 'Specifies whether TCP forwarding "
                    "is permitted ... yes (the default)'; PermitOpen: 'The default is to "
                    "allow all port forwarding requests' (any); Debian 12's sshd_config sets "
                    "neither")
_SSHD_NOLOGIN = ("sshd_config(5), AllowTcpForwarding: 'disabling TCP forwarding does not "
                 "improve security unless users are also denied shell access'; and the "
                 "converse holds: ssh -N runs no shell, so a user whose shell is "
                 "/usr/sbin/nologin still forwards (measured, Debian 12)")
_SSH_DYNAMIC = ("ssh(1), -D [bind_address:]port: 'dynamic application-level port "
                "forwarding ... ssh will act as a SOCKS server'; sshd opens each connection "
                "the client asks for (a direct-tcpip channel)")
_SSHD_CLOSES = (
    Directive("block_imds=true", "AllowTcpForwarding no",
              "sshd_config, for every user or in a Match User block",
              "sshd_config(5), AllowTcpForwarding: 'no to prevent all TCP forwarding'"),
    Directive("block_imds=true", "PermitOpen <host:port ...> (the destinations forwarding "
              "may reach, 169.254.169.254:80 not among them), or PermitOpen none",
              "sshd_config, for every user or in a Match User block",
              "sshd_config(5), PermitOpen: 'Specifies the destinations to which TCP port "
              "forwarding is permitted'; it covers ssh -L and -D (direct-tcpip)"),
)
_HAPROXY_TCP = ("HAProxy 2.6 configuration manual, mode tcp: 'The instance will work in pure "
                "TCP mode. A full-duplex connection will be established between clients and "
                "servers, and no layer 7 examination will be performed'; option forwardfor "
                "applies to mode http only")
_HAPROXY_TCP_CLOSES = Directive(
    "block_imds=true", "server <name> <an address that is not 169.254.169.254>:<port>",
    "the backend (or listen) section in mode tcp (haproxy.cfg)",
    "HAProxy 2.6 configuration manual, server <name> <address>: the upstream of the backend")
_NGINX_STREAM = ("nginx docs, ngx_stream_proxy_module, proxy_pass address: 'Sets the address "
                 "of a proxied server'; the stream module proxies TCP and reads no HTTP "
                 "(no proxy_set_header, no X-Forwarded-For)")
_NGINX_STREAM_CLOSES = Directive(
    "block_imds=true", "proxy_pass <an upstream that is not 169.254.169.254>;",
    "the server block of the stream context (nginx.conf)",
    "nginx docs, ngx_stream_proxy_module, proxy_pass address: the proxied server")
_MICROSOCKS = ("microsocks README: 'microsocks -1 -q -i listenip -p port -u user -P "
               "password -b bindaddr'; without -u and -P it asks no authentication, and it "
               "has no rule on destinations: any CONNECT is opened")
# microsocks has no rule on destinations: nothing in its own words says
# block_imds (the loader refuses it there); what closes it is not opening it.
_MICROSOCKS_CLOSES = Directive(
    "remove", "microsocks -i 127.0.0.1 (loopback only), or -u USER -P PASSWORD, or no "
    "microsocks", "microsocks' command line", "microsocks README: -i listenip, -u user, "
    "-P password; it has no option that restricts destinations")
_DANTE = ("danted.conf(5): 'client pass' rules say who may connect, 'socks pass' rules "
          "where to; a configuration passing from 0.0.0.0/0 to 0.0.0.0/0 opens every "
          "destination (the usual open-proxy setup)")
_DANTE_CLOSES = Directive(
    "block_imds=true", "socks block { from: 0.0.0.0/0 to: 169.254.169.254/32 }",
    "danted.conf, before the socks pass rules (the first matching rule wins)",
    "danted.conf(5): socks rules are matched in order; block refuses the request")

PRODUCTS: dict[str, Product] = {
    p.name: p
    for p in (
        Product("nginx", "proxy", ("nginx",), "nginx", (
            Setup("nginx", "reverse", "proxy", "nginx 1.22 proxy_pass", _PASS_ALL, Form.ORIGIN,
                  "proxy_pass http://169.254.169.254;",
                  (_NGINX_XFF, "nginx docs, proxy_pass_request_headers: on by default "
                   "(the client's headers are passed); any method is proxied"), _NGINX),
            Setup("nginx", "stream", "relay", "nginx 1.22 stream proxy_pass "
                  "(libnginx-mod-stream)", PASS_BYTES, Form.ORIGIN,
                  "stream { server { listen 8081; proxy_pass 169.254.169.254:80; } }",
                  (_NGINX_STREAM,), directives=(_NGINX_STREAM_CLOSES,)),
        ), default_mode="reverse"),
        Product("apache", "proxy", ("apache2",), "apache2", (
            Setup("apache", "reverse", "proxy", "Apache httpd 2.4 mod_proxy, ProxyPass",
                  _PASS_ALL_XFF, Form.ORIGIN, "ProxyPass / http://169.254.169.254/",
                  (_APACHE_XFF,), _APACHE_REVERSE),
            Setup("apache", "forward", "proxy", "Apache httpd 2.4 mod_proxy, ProxyRequests On",
                  _PASS_ALL, Form.ABSOLUTE, "ProxyRequests On",
                  (_APACHE_XFF, "Apache httpd 2.4 docs, mod_proxy, ProxyRequests: a "
                   "forward proxy; access is granted unless restricted (<Proxy \"*\">)"),
                  _APACHE_FORWARD),
        )),  # the modes differ on X-Forwarded-For: a node must say which
        Product("squid", "proxy", ("squid",), "squid", (
            Setup("squid", "forward", "proxy", "Squid 5.7, http_access allow all",
                  _PASS_ALL_XFF, Form.ABSOLUTE, "http_access allow all",
                  (_SQUID_XFF, "Squid docs, http_access: the shipped squid.conf allows "
                   "localhost only; 'allow all' opens it"), _SQUID),
            Setup("squid", "reverse", "proxy", "Squid 5.7 accelerator (http_port accel)",
                  _PASS_ALL_XFF, Form.ORIGIN,
                  "http_port accel; cache_peer 169.254.169.254 parent 80 0 originserver; "
                  "http_access allow all",
                  (_SQUID_XFF, "Squid wiki, ConfigExamples/Reverse/BasicAccelerator"), _SQUID),
        ), default_mode="forward"),  # both modes add X-Forwarded-For
        Product("haproxy", "proxy", ("haproxy",), "haproxy", (
            Setup("haproxy", "reverse", "proxy", "HAProxy 2.6, mode http",
                  _PASS_ALL, Form.ORIGIN, "server imds 169.254.169.254:80",
                  ("HAProxy 2.6 configuration manual, option forwardfor: X-Forwarded-For "
                   "is added only with this option, which is off by default",), _HAPROXY),
            Setup("haproxy", "tcp", "relay", "HAProxy 2.6, mode tcp", PASS_BYTES, Form.ORIGIN,
                  "mode tcp; server imds 169.254.169.254:80", (_HAPROXY_TCP,),
                  directives=(_HAPROXY_TCP_CLOSES,)),
        ), default_mode="reverse"),
        Product("tinyproxy", "proxy", ("tinyproxy",), "tinyproxy", (
            Setup("tinyproxy", "forward", "proxy", "tinyproxy 1.11, no Allow line",
                  _PASS_ALL, Form.ABSOLUTE, "no Allow line (any client may connect)",
                  ("tinyproxy.conf(5): Via is added (ViaProxyName); X-Tinyproxy only with "
                   "XTinyproxy Yes; no X-Forwarded-For; with no Allow line every client "
                   "is allowed",), _TINYPROXY),
        ), default_mode="forward"),
        Product("modsecurity-crs", "waf", ("apache2", "libapache2-mod-security2",
                                           "modsecurity-crs"), "apache2", (
            Setup("modsecurity-crs", "reverse", "waf",
                  "ModSecurity 2.9 + OWASP CRS 3.3 in Apache httpd 2.4, SecRuleEngine On",
                  RelayPolicy(("GET", "HEAD", "POST", "OPTIONS"), adds_xff=True,
                              forwards_headers=True, refusal_status=403),
                  Form.ORIGIN, "ProxyPass / http://169.254.169.254/",
                  ("OWASP CRS 3.3, crs-setup.conf: tx.allowed_methods defaults to "
                   "'GET HEAD POST OPTIONS'; rule 911100 blocks other methods, 403 "
                   "(SecDefaultAction deny,status:403 at anomaly score 5)",
                   "ModSecurity's modsecurity.conf-recommended ships SecRuleEngine "
                   "DetectionOnly: set On, as a WAF that blocks is deployed",
                   _APACHE_XFF), _CRS),
        ), default_mode="reverse"),
        Product("php-ssrf", "ssrf", ("php-cli",), "php", (
            Setup("php-ssrf", None, "ssrf",
                  "PHP 8.2 app: echo file_get_contents($_GET['site'])", _FETCH, Form.SITE,
                  "the app itself: it fetches any URL given in ?site=",
                  ("PHP manual, HTTP context options: the http:// wrapper sends GET "
                   "unless a stream context sets 'method', and only the headers the "
                   "context sets; file_get_contents($url) has no context",)),
        )),
        Product("socat", "relay", ("socat",), "socat", (
            Setup("socat", None, "relay", "socat 1.7.4.4 TCP-LISTEN,fork to TCP", PASS_BYTES,
                  Form.ORIGIN, "TCP-LISTEN:8081,fork,reuseaddr TCP:169.254.169.254:80",
                  (_SOCAT,), directives=(_SOCAT_CLOSES,)),
        )),
        Product("ssh", "relay", ("openssh-server", "openssh-client"), "sshd", (
            Setup("ssh", "local-forward", "relay",
                  "OpenSSH 9.2p1 sshd, Debian's sshd_config; ssh -N -L 8081:169.254.169.254:80",
                  PASS_BYTES, Form.ORIGIN,
                  "none: Debian's default sshd_config (AllowTcpForwarding yes, PermitOpen any)",
                  (_SSHD_FORWARDING, _SSHD_NOLOGIN), directives=_SSHD_CLOSES),
            Setup("ssh", "socks", "relay",
                  "OpenSSH 9.2p1 sshd, Debian's sshd_config; ssh -N -D 1080 (SOCKS5)",
                  PASS_BYTES, Form.SOCKS,
                  "none: Debian's default sshd_config (AllowTcpForwarding yes, PermitOpen any)",
                  (_SSHD_FORWARDING, _SSHD_NOLOGIN, _SSH_DYNAMIC), directives=_SSHD_CLOSES),
        )),  # the modes differ in how a client addresses it: a node must say which
        Product("microsocks", "relay", ("microsocks",), "microsocks", (
            Setup("microsocks", None, "relay", "microsocks 1.0.3, defaults (no auth)",
                  PASS_BYTES, Form.SOCKS, "the defaults: no -u/-P, any destination",
                  (_MICROSOCKS,), directives=(_MICROSOCKS_CLOSES,)),
        )),
        Product("dante", "relay", ("dante-server",), "danted", (
            Setup("dante", None, "relay", "dante 1.4.2 danted, client pass and socks pass "
                  "from 0/0 to 0/0", PASS_BYTES, Form.SOCKS,
                  "socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }",
                  (_DANTE,), directives=(_DANTE_CLOSES,)),
        )),
    )
}


# Every mode a product has, the L7 ones first, in table order: the choices of `mode:`.
MODES = tuple(dict.fromkeys(
    [s.mode for p in PRODUCTS.values() for s in p.setups if s.mode and s.kind != "relay"]
    + [s.mode for p in PRODUCTS.values() for s in p.setups if s.mode and s.kind == "relay"]))


@dataclass(frozen=True)
class Stack:
    """A user-space network stack (`network:` on a container or a VM): it ends
    each of the workload's TCP connections and opens its own socket in the
    stack of the node it runs on, as an L4 relay does."""

    name: str
    kinds: tuple[str, ...]  # the node kinds that may use it
    title: str  # what it is, with the version measured
    packages: tuple[str, ...]  # Debian packages that bring its binary (none: simulated only)
    binary: str | None  # the program hopsim emulate runs, if any
    sources: tuple[str, ...]
    directives: tuple[Directive, ...]  # what closes the path, on the node it runs on
    certainty: str  # the docs' marker for its model: M measured, U uncertain
    refusing_versions: tuple[str, ...] = ()  # versions that refuse 169.254.169.254

    def policy(self, version: str | None) -> RelayPolicy:
        """What it does to the workload's requests at `version` (None: the
        version that exposes, as the default always is)."""
        if version is not None and version in self.refusing_versions:
            return RelayPolicy(ANY_METHOD, adds_xff=False, forwards_headers=True,
                               refuses_imds=True)
        return PASS_BYTES


# A user-space stack has no setting that refuses a destination: what closes its
# path is on the instance (the rootless user's sockets) or in the container.
_OWNER_RULE = (
    Directive("filters={chain: output, owner: NODE, to: imds, action: drop}",
              "nft add rule inet filter output meta skuid <the rootless user> ip daddr "
              "169.254.169.254 drop", "the instance's nftables ruleset (output hook)",
              "nftables wiki, Matching packet metainformation: meta skuid, the user that "
              "owns the socket (output hook only)"),
    Directive("block_imds=true", "ip route add blackhole 169.254.169.254/32",
              "inside the container's network namespace, before the workload starts",
              "ip-route(8): a blackhole route discards the packets (the connect fails at "
              "once)"),
)
_PER_SOCKET = ("(measured, Debian 12): the container's TCP connection is ended by the "
               "stack, which connect()s its own socket in the instance's namespace: "
               "IMDS sees the instance's address, the answer arrives with TTL 64 from the "
               "stack, whatever the hop limit")

STACKS: dict[str, Stack] = {
    s.name: s
    for s in (
        Stack("slirp4netns", ("container", "host"), "slirp4netns 1.2.0, default options",
              ("slirp4netns",), "slirp4netns",
              ("slirp4netns(1): 'User-mode networking for unprivileged network namespaces'; "
               "libslirp terminates the guest's TCP and opens host sockets; "
               "--disable-host-loopback blocks 127.0.0.1 only, not 169.254.169.254 "
               + _PER_SOCKET,), _OWNER_RULE, "M"),
        Stack("pasta", ("container", "host"), "pasta (passt 2023-03-09), run by an "
              "unprivileged user", ("passt",), "pasta",
              ("passt(1): pasta 'translates between a network namespace's Layer-2 interface "
               "and native Layer-4 sockets (TCP, UDP, ICMP echo) on the host'; Podman 5's "
               "default rootless network " + _PER_SOCKET,), _OWNER_RULE, "M"),
        Stack("gvisor-tap-vsock", ("container", "host"), "gvisor-tap-vsock in RootlessKit "
              "(rootless Docker 29.5+)", (), None,
              ("RootlessKit docs: the gvisor-tap-vsock network driver runs a gVisor TCP/IP "
               "stack in user space and opens host sockets for the container's connections",
               "moby/moby#52694: in Docker 29.5.0 (RootlessKit 3.0.0) connections to "
               "169.254.169.254 were refused ('Connection refused'); rootlesskit PR 597 "
               "(3.0.1) passes them again: the default is the version that passes"),
              _OWNER_RULE, "U", refusing_versions=("3.0.0",)),
        Stack("bypass4netns", ("container", "host"), "bypass4netns (rootless containers, "
              "seccomp socket bypass)", (), None,
              ("bypass4netns README: it intercepts the container's socket calls (seccomp "
               "user notification) and replaces its sockets with sockets created in the "
               "host's network namespace: connections leave from the host's stack",),
              _OWNER_RULE, "U"),
        Stack("qemu-user", ("host",), "QEMU user-mode networking (-netdev user, libslirp)",
              (), None,
              ("QEMU docs, Network emulation, 'User Networking (SLIRP)': the guest's TCP "
               "connections are made by QEMU's own sockets on the host (libslirp, as "
               "slirp4netns)",), _OWNER_RULE, "U"),
    )
}


def refusal_directive(product: str | None, mode: str | None, kind: str) -> Directive | None:
    """The product's own way of refusing IMDS (block_imds on its node), or None
    where it has none (microsocks). A relay with no product is hopsim's own,
    which refuses as written: a generic directive-less yes is left to callers."""
    if product is None:
        return None
    return PRODUCTS[product].setup(mode, kind).directive("block_imds", True)


def product_names() -> tuple[str, ...]:
    return tuple(PRODUCTS)


def setups() -> list[Setup]:
    """Every product in every mode, in table order: the L7 relays, then the L4
    ones (`kind: relay`), so a listing shows the two families side by side."""
    every = [s for p in PRODUCTS.values() for s in p.setups]
    return [s for s in every if s.kind != "relay"] + [s for s in every if s.kind == "relay"]


def mode_problem(product: str, mode: str | None, kind: str) -> str | None:
    """What is wrong with naming `product` (in `mode`) on a node of `kind`, or None."""
    spec = PRODUCTS[product]
    if kind not in spec.kinds:
        kinds = " or kind: ".join(spec.kinds)
        return f"{product} is a {' or a '.join(spec.kinds)}, not a {kind}: write kind: {kinds}"
    own = spec.of_kind(kind)
    modes = [s.mode for s in own if s.mode]
    if mode is None:
        if len(own) > 1 and spec.default_mode not in modes:
            what, differ = (("a local forward (-L) or a SOCKS server (-D)",
                             "how a client addresses it") if kind == "relay" else
                            ("both a reverse and a forward proxy", "what decides the token"))
            return (f"{product} is {what}, and they differ on {differ}: say which with "
                    f"mode: {' or mode: '.join(modes)}")
        return None
    if not spec.modes:
        return f"{product} has no mode"
    if mode not in modes:
        other = next((s for s in spec.setups if s.mode == mode), None)
        if other is not None and other.kind != kind:
            return f"{product} in mode {mode} is a {other.kind}: write kind: {other.kind}"
        if not modes:
            return f"{product} as a {kind} has no mode"
        noun = " proxy" if kind == "proxy" else f" {kind}" if kind != "relay" else " relay"
        return f"{product} is emulated as a {' or '.join(modes)}{noun} only"
    return None
    if not spec.modes:
        return f"{product} has no mode"
    if mode not in modes:
        other = next((s for s in spec.setups if s.mode == mode), None)
        if other is not None:
            return f"{product} in mode {mode} is a {other.kind}: write kind: {other.kind}"
        if not modes:
            return f"{product} as a {kind} has no mode"
        return f"{product} as a {kind} is emulated in mode {' or '.join(modes)} only"
    return None
