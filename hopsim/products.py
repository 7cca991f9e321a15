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

from hopsim.kinds import ANY_METHOD, RelayPolicy

MODES = ("reverse", "forward")


class Form(Enum):
    """How a request must be addressed to the product for it to relay it."""

    ORIGIN = "origin"  # PUT /latest/api/token: the upstream is in its configuration
    ABSOLUTE = "absolute"  # PUT http://169.254.169.254/latest/api/token: a forward proxy
    SITE = "site"  # GET /?site=http://169.254.169.254/...: the SSRF app's parameter


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

    def setup(self, mode: str | None) -> Setup:
        """The setup for `mode` (None: the default mode, or the only one)."""
        mode = mode or self.default_mode
        for s in self.setups:
            if s.mode == mode or len(self.setups) == 1:
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

PRODUCTS: dict[str, Product] = {
    p.name: p
    for p in (
        Product("nginx", "proxy", ("nginx",), "nginx", (
            Setup("nginx", "reverse", "proxy", "nginx 1.22 proxy_pass", _PASS_ALL, Form.ORIGIN,
                  "proxy_pass http://169.254.169.254;",
                  (_NGINX_XFF, "nginx docs, proxy_pass_request_headers: on by default "
                   "(the client's headers are passed); any method is proxied"), _NGINX),
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
    )
}


def product_names() -> tuple[str, ...]:
    return tuple(PRODUCTS)


def setups() -> list[Setup]:
    """Every product in every mode, in table order."""
    return [s for p in PRODUCTS.values() for s in p.setups]


def mode_problem(product: str, mode: str | None, kind: str) -> str | None:
    """What is wrong with naming `product` (in `mode`) on a node of `kind`, or None."""
    spec = PRODUCTS[product]
    if spec.kind != kind:
        return f"{product} is a {spec.kind}, not a {kind}: write kind: {spec.kind}"
    if mode is None:
        if spec.modes and spec.default_mode is None:
            return (f"{product} is both a reverse and a forward proxy, and they differ on "
                    f"what decides the token: say which with mode: "
                    f"{' or mode: '.join(spec.modes)}")
        return None
    if not spec.modes:
        return f"{product} has no mode"
    if mode not in spec.modes:
        return f"{product} is emulated as a {' or '.join(spec.modes)} proxy only"
    return None
