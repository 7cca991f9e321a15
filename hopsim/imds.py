"""The IMDSv2 rules: one pure function from request to response.

Every rule cites docs/facts.md ([C] confirmed, [U] uncertain). No
sockets and no clock: the caller passes the instance and the time, so the
simulator and a real HTTP server (the kernel emulator) share this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from hopsim.http import Request, Response

IPV4_ENDPOINT = "169.254.169.254"
IPV6_ENDPOINT = "fd00:ec2::254"
TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
XFF_HEADER = "X-Forwarded-For"
CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
ROLE = "hopsim-instance-role"
MAX_TOKEN_TTL = 21600  # [C] 1..21600 seconds
DEFAULT_TTL = 64  # Linux's default IP TTL; every response but the token's leaves with it

HTTP_TOKENS = ("required", "optional")
HTTP_ENDPOINT = ("enabled", "disabled")
MIN_HOP_LIMIT, MAX_HOP_LIMIT = 1, 64  # [C] HttpPutResponseHopLimit 1..64


@dataclass(frozen=True)
class ImdsSettings:
    """An instance's metadata options, with AWS's defaults."""

    hop_limit: int = 1
    http_tokens: str = "required"
    http_endpoint: str = "enabled"
    ipv6: bool = False


def token_request(ttl_seconds: int = MAX_TOKEN_TTL) -> Request:
    """The PUT an SDK sends for a session token."""
    return Request("PUT", TOKEN_PATH, ((TTL_HEADER, str(ttl_seconds)),))


def credentials_request(token: str | None = None) -> Request:
    """The GET of the role credentials: IMDSv2 with a token, IMDSv1 without."""
    headers = ((TOKEN_HEADER, token),) if token else ()
    return Request("GET", CREDENTIALS_PATH, headers)


def _text(status: int, body: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, headers, body)


def _key(instance: str) -> bytes:
    return hashlib.sha256(b"hopsim-imds-key:" + instance.encode()).digest()


def _sign(instance: str, expires: str) -> str:
    mac = hmac.new(_key(instance), f"{instance}|{expires}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def issue_token(instance: str, ttl_seconds: int, now: float) -> str:
    """A deterministic token that only `instance` accepts, until now + ttl."""
    expires = f"{now + ttl_seconds:.6f}"
    claim = base64.urlsafe_b64encode(f"{instance}|{expires}".encode()).decode().rstrip("=")
    return f"AQAE{claim}.{_sign(instance, expires)}"


def is_token(text: str) -> bool:
    """Whether `text` is a token as issue_token makes them (whoever it is for)."""
    claim, dot, mac = text.partition(".")
    return text.startswith("AQAE") and bool(dot) and len(mac) == 32 and claim.isascii()


def token_is_valid(token: str, instance: str, now: float) -> bool:
    """[C] A token is valid only on the instance that issued it, until its TTL ends."""
    if not token.isascii() or not token.startswith("AQAE") or "." not in token:
        return False
    claim, _, mac = token[4:].partition(".")
    try:
        decoded = base64.urlsafe_b64decode(claim + "=" * (-len(claim) % 4)).decode()
        issuer, expires = decoded.rsplit("|", 1)
        deadline = float(expires)
    except ValueError:
        return False
    return (
        issuer == instance
        and hmac.compare_digest(mac, _sign(issuer, expires))
        and now < deadline
    )


def _token(request: Request, instance: str, now: float) -> Response:
    if request.method != "PUT":
        # [U] undocumented; Firecracker's MMDS answers 405.
        return _text(405, "Method Not Allowed\n", (("Allow", "PUT"),))
    if request.header(XFF_HEADER) is not None:
        # [C] "PUT requests are rejected if they contain an X-Forwarded-For
        # header." The status is undocumented [U]: 403 is the usual reading.
        return _text(403, "Forbidden: X-Forwarded-For on a token request\n")
    ttl = request.header(TTL_HEADER)
    digits = (ttl or "").strip()
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_TOKEN_TTL:
        # [C] 400: missing or invalid ttl parameter.
        return _text(400, "Bad Request: missing or invalid ttl header\n")
    token = issue_token(instance, int(digits), now)
    return _text(200, token, ((TTL_HEADER, str(int(digits))),))  # [C] echoes the ttl header


def respond(request: Request, settings: ImdsSettings, *, instance: str, now: float) -> Response:
    """What IMDS answers to `request` on `instance` at time `now` (seconds)."""
    path = request.path.split("?", 1)[0]
    if settings.http_endpoint == "disabled":
        return _text(403, "Forbidden: instance metadata endpoint disabled\n")  # [C]
    if path == TOKEN_PATH:
        return _token(request, instance, now)
    if path.endswith("/api/token"):
        return _text(403, "Forbidden: token requests go to /latest/api/token\n")  # [C]
    if request.method not in ("GET", "HEAD"):
        return _text(405, "Method Not Allowed\n", (("Allow", "GET, HEAD"),))
    token = request.header(TOKEN_HEADER)
    if token is not None and not token_is_valid(token, instance, now):
        return _text(401, "Unauthorized\n")  # [C] invalid or expired token
    if token is None and settings.http_tokens == "required":
        return _text(401, "Unauthorized\n")  # [C] IMDSv1 off
    body = _metadata(path)
    if body is None:
        return _text(404, "Not Found\n")  # [C]
    return _text(200, "" if request.method == "HEAD" else body)


def _metadata(path: str) -> str | None:
    tree = {
        "/latest/meta-data/": "ami-id\niam/\ninstance-id\n",
        "/latest/meta-data/instance-id": "i-0123456789abcdef0",
        "/latest/meta-data/iam/": "security-credentials/\n",
        CREDENTIALS_PATH: ROLE,
        CREDENTIALS_PATH + ROLE: (
            '{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAHOPSIMEXAMPLE",'
            ' "SecretAccessKey": "hopsim-simulated-secret", "Token": "hopsim-simulated"}'
        ),
    }
    return tree.get(path)
