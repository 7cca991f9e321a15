"""Every IMDS status code, each pinned to a line of docs/facts.md.

Tags as on that page: [C] confirmed in a primary source, [O] observed in
public bug reports, [U] uncertain or inferred. `respond` is pure: these tests
pass the instance and the clock explicitly.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hopsim.http import Request, Response, parse_request
from hopsim.imds import ImdsSettings, issue_token, respond, token_is_valid

# Literal names from the facts page, not imported from the module under test.
TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
CREDENTIALS = "/latest/meta-data/iam/security-credentials/"

INSTANCE = "i-0aaaaaaaaaaaaaaaa"
OTHER_INSTANCE = "i-0bbbbbbbbbbbbbbbb"
NOW = 1_700_000_000.0

REQUIRED = ImdsSettings(http_tokens="required")
OPTIONAL = ImdsSettings(http_tokens="optional")
BOTH_MODES = pytest.mark.parametrize("mode", [REQUIRED, OPTIONAL], ids=["required", "optional"])


def ask(request: Request, mode: ImdsSettings = REQUIRED, *, instance: str = INSTANCE,
        now: float = NOW) -> Response:
    return respond(request, mode, instance=instance, now=now)


def put_token(ttl: str | None = "21600", path: str = TOKEN_PATH,
              extra: tuple[tuple[str, str], ...] = ()) -> Request:
    headers = ((TTL_HEADER, ttl),) if ttl is not None else ()
    return Request("PUT", path, headers + extra)


def get(path: str, token: str | None = None, method: str = "GET",
        extra: tuple[tuple[str, str], ...] = ()) -> Request:
    headers = ((TOKEN_HEADER, token),) if token is not None else ()
    return Request(method, path, headers + extra)


def fresh_token(ttl: int = 21600, *, mode: ImdsSettings = REQUIRED, instance: str = INSTANCE,
                now: float = NOW) -> str:
    response = ask(put_token(str(ttl)), mode, instance=instance, now=now)
    assert response.status == 200
    return response.body


# --- 200: the token -------------------------------------------------------------


def test_put_with_valid_ttl_returns_the_token_and_echoes_the_ttl_header():
    """[C] `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: N`
    returns the token; "The response echoes that header"."""
    response = ask(put_token("21600"))
    assert response.status == 200
    assert response.body, "the body is the token"
    assert token_is_valid(response.body, INSTANCE, NOW)
    # The body is exactly the token: a GET with it is accepted.
    assert ask(get(CREDENTIALS, response.body)).status == 200
    assert response.header(TTL_HEADER) == "21600"


@pytest.mark.parametrize("ttl", ["1", "300", "21600"])
def test_echoed_ttl_header_is_the_requested_value(ttl):
    """[C] "The response echoes that header"."""
    assert ask(put_token(ttl)).header(TTL_HEADER) == ttl


# --- 400: the ttl parameter ------------------------------------------------------


@pytest.mark.parametrize("ttl", ["1", "21600"], ids=["lowest", "highest"])
def test_ttl_at_the_bounds_is_accepted(ttl):
    """[C] N in 1..21600: both ends are valid."""
    assert ask(put_token(ttl)).status == 200


@pytest.mark.parametrize(
    "ttl",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("abc", id="non-numeric"),
        pytest.param("1.5", id="fraction"),
        pytest.param("-1", id="negative"),
        pytest.param("0x10", id="hex"),
        # U+00B2 SUPERSCRIPT TWO: a latin-1 byte (0xB2) a client can put on the
        # wire; str.isdigit() says True but it is not a number.
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param("0", id="zero"),
        pytest.param("21601", id="above-21600"),
    ],
)
def test_missing_or_invalid_ttl_is_400(ttl):
    """[C] 400 missing/invalid ttl parameter on the PUT; "The header is required
    (no default)"; N in 1..21600."""
    assert ask(put_token(ttl)).status == 400


def test_superscript_ttl_from_the_wire_is_400():
    """[C] 400 invalid ttl: the same request as bytes from a client (latin-1
    0xB2), parsed as the server would, must get 400, not crash."""
    raw = (b"PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\n"
           b"X-aws-ec2-metadata-token-ttl-seconds: \xb2\r\nContent-Length: 0\r\n\r\n")
    assert ask(parse_request(raw)).status == 400


# --- 403: X-Forwarded-For, disabled endpoint, versioned token path ---------------


@pytest.mark.parametrize(
    "name", ["X-Forwarded-For", "x-forwarded-for", "X-FORWARDED-FOR", "x-Forwarded-fOR"])
@BOTH_MODES
def test_put_with_x_forwarded_for_is_403_whatever_the_case(name, mode):
    """[C] "PUT requests are rejected if they contain an X-Forwarded-For header."
    The status is [U]; hopsim uses 403 and says so. HTTP header names are
    case-insensitive, so every spelling counts."""
    response = ask(put_token("21600", extra=((name, "10.0.0.7"),)), mode)
    assert response.status == 403
    assert not token_is_valid(response.body, INSTANCE, NOW)


@BOTH_MODES
def test_get_with_x_forwarded_for_is_not_refused_for_it(mode):
    """[C] The X-Forwarded-For rule is about PUT requests only: a GET with a
    valid token and X-Forwarded-For is answered."""
    token = fresh_token(mode=mode)
    response = ask(get(CREDENTIALS, token, extra=(("X-Forwarded-For", "10.0.0.7"),)), mode)
    assert response.status == 200


def test_tokenless_get_with_x_forwarded_for_under_optional_gets_credentials():
    """[C] The XFF rule rejects PUTs; [C] with HttpTokens=optional a plain GET
    returns metadata. XFF on the GET changes nothing."""
    response = ask(get(CREDENTIALS, extra=(("X-Forwarded-For", "10.0.0.7"),)), OPTIONAL)
    assert response.status == 200


def _requests_for_disabled() -> list:
    token = issue_token(INSTANCE, 21600, NOW)
    return [
        pytest.param(put_token("21600"), id="token-put"),
        pytest.param(put_token(None), id="token-put-no-ttl"),
        pytest.param(put_token("21600", extra=(("X-Forwarded-For", "1.2.3.4"),)), id="put-xff"),
        pytest.param(put_token("21600", path="/2021-03-23/api/token"), id="versioned-put"),
        pytest.param(get(TOKEN_PATH), id="get-token-path"),
        pytest.param(get(CREDENTIALS), id="tokenless-get"),
        pytest.param(get(CREDENTIALS, token), id="get-valid-token"),
        pytest.param(get(CREDENTIALS, "bogus"), id="get-invalid-token"),
        pytest.param(get("/latest/meta-data/instance-id", token, "HEAD"), id="head"),
        pytest.param(get("/no/such/path", token), id="unknown-path"),
    ]


@pytest.mark.parametrize("request_", _requests_for_disabled())
@BOTH_MODES
def test_disabled_endpoint_refuses_everything_with_403(request_, mode):
    """[C] 403 "IMDS turned off (`HttpEndpoint=disabled`)"."""
    disabled = ImdsSettings(http_tokens=mode.http_tokens, http_endpoint="disabled")
    assert ask(request_, disabled).status == 403


@BOTH_MODES
def test_put_to_a_versioned_token_path_is_403(mode):
    """[C] "A PUT to a version path (`/2021-03-23/api/token`) is refused with 403"
    (even with a valid ttl header)."""
    response = ask(put_token("21600", path="/2021-03-23/api/token"), mode)
    assert response.status == 403
    assert not token_is_valid(response.body, INSTANCE, NOW)


# --- 405: other methods on the token path [U] -------------------------------------


@BOTH_MODES
def test_get_on_the_token_path_is_405_uncertain(mode):
    """[U] Other methods on the token path are undocumented; Firecracker answers
    405, and so does hopsim."""
    assert ask(get(TOKEN_PATH), mode).status == 405
    assert ask(get(TOKEN_PATH, fresh_token(mode=mode)), mode).status == 405


# --- 401 and 200 on reads ----------------------------------------------------------


def test_tokenless_get_is_401_when_tokens_required():
    """[C] 401 GET with a missing token (when `HttpTokens=required`)."""
    assert ask(get(CREDENTIALS), REQUIRED).status == 401
    assert ask(get("/latest/meta-data/instance-id"), REQUIRED).status == 401


def test_tokenless_get_returns_role_credentials_when_tokens_optional():
    """[C] `HttpTokens=optional`: a plain GET without a token returns metadata,
    including role credentials at `/latest/meta-data/iam/security-credentials/ROLE`."""
    listing = ask(get(CREDENTIALS), OPTIONAL)
    assert listing.status == 200
    role = listing.body.strip().splitlines()[0]
    assert role
    credentials = ask(get(CREDENTIALS + role), OPTIONAL)
    assert credentials.status == 200
    assert "AccessKeyId" in credentials.body and "SecretAccessKey" in credentials.body


def _forged(claim_text: str, mac: str) -> str:
    claim = base64.urlsafe_b64encode(claim_text.encode()).decode().rstrip("=")
    return f"AQAE{claim}.{mac}"


def _invalid_tokens() -> list:
    good = issue_token(INSTANCE, 21600, NOW)
    head, _, mac = good.rpartition(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    far = int(NOW) + 10 * 21600
    return [
        pytest.param("", id="empty"),
        pytest.param("not-a-token", id="garbage"),
        pytest.param("AQAE", id="prefix-only"),
        pytest.param("AQAE.", id="empty-claim"),
        pytest.param(good + "x", id="extra-char"),
        pytest.param(f"{head}.{flipped}", id="tampered-mac"),
        pytest.param(_forged(f"{INSTANCE}|{far}", mac), id="extended-expiry"),
        pytest.param(_forged(f"{INSTANCE}|{far}", "0" * 32), id="forged-zero-mac"),
        # Header values arrive as latin-1 text: a non-ASCII signature is just
        # another invalid token.
        pytest.param(_forged(f"{INSTANCE}|{far}", "\u00e9" * 32), id="non-ascii-mac"),
    ]


@pytest.mark.parametrize("token", _invalid_tokens())
@BOTH_MODES
def test_invalid_token_is_401_even_when_optional(token, mode):
    """[C] 401 GET with an invalid token. A token that is sent is checked: IMDSv1
    being on (optional) does not excuse a bad one."""
    assert ask(get(CREDENTIALS, token), mode).status == 401


@BOTH_MODES
def test_token_from_another_instance_is_401(mode):
    """[C] "A token is valid only on the instance that issued it"."""
    token = fresh_token(mode=mode, instance=OTHER_INSTANCE)
    assert ask(get(CREDENTIALS, token), mode, instance=OTHER_INSTANCE).status == 200
    assert ask(get(CREDENTIALS, token), mode, instance=INSTANCE).status == 401


@pytest.mark.parametrize("ttl", [1, 60, 21600])
@BOTH_MODES
def test_expired_token_is_401(ttl, mode):
    """[C] A token is valid "until its TTL runs out"; 401 for an expired token,
    also under optional."""
    token = fresh_token(ttl, mode=mode, now=NOW)
    assert ask(get(CREDENTIALS, token), mode, now=NOW + ttl / 2).status == 200
    assert ask(get(CREDENTIALS, token), mode, now=NOW + ttl + 1).status == 401


@BOTH_MODES
def test_token_issued_at_a_fractional_time_lives_its_whole_ttl(mode):
    """[C] A token is valid "until its TTL runs out": issued at t with ttl N, it
    is still valid at t + N - 0.25 s. The engine's clock is fractional
    (T0 + 100 us per link), so issue times are rarely whole seconds."""
    issued = NOW + 0.5
    token = fresh_token(10, mode=mode, now=issued)
    assert ask(get(CREDENTIALS, token), mode, now=issued + 10 - 0.25).status == 200
    assert ask(get(CREDENTIALS, token), mode, now=issued + 10 + 0.25).status == 401


@BOTH_MODES
def test_valid_token_reads_credentials(mode):
    """[C] Reads: GET with `X-aws-ec2-metadata-token: TOKEN` on the issuing
    instance, within the TTL."""
    token = fresh_token(mode=mode)
    listing = ask(get(CREDENTIALS, token), mode)
    assert listing.status == 200
    role = listing.body.strip().splitlines()[0]
    credentials = ask(get(CREDENTIALS + role, token), mode, now=NOW + 60)
    assert credentials.status == 200
    assert "AccessKeyId" in credentials.body


@pytest.mark.parametrize("header_name", [TOKEN_HEADER, TOKEN_HEADER.lower(),
                                         TOKEN_HEADER.upper()])
def test_token_header_name_is_case_insensitive(header_name):
    """[C] Reads carry `X-aws-ec2-metadata-token`; HTTP header names are
    case-insensitive."""
    token = fresh_token()
    assert ask(Request("GET", CREDENTIALS, ((header_name, token),))).status == 200


@BOTH_MODES
def test_unknown_path_with_a_valid_token_is_404(mode):
    """[C] 404 no such path."""
    token = fresh_token(mode=mode)
    assert ask(get("/latest/meta-data/no-such-thing", token), mode).status == 404
    assert ask(get("/nope", token), mode).status == 404


@BOTH_MODES
def test_head_is_allowed_with_an_empty_body(mode):
    """[C] Reads: `GET` (or `HEAD`) with the token."""
    token = fresh_token(mode=mode)
    for path in (CREDENTIALS, "/latest/meta-data/instance-id"):
        got = ask(get(path, token, "GET"), mode)
        head = ask(get(path, token, "HEAD"), mode)
        assert got.status == 200 and got.body
        assert head.status == 200
        assert head.body == ""


def test_tokenless_head_follows_the_tokens_setting():
    """[C] HEAD is a read like GET: 401 without a token under required, 200
    (empty body) under optional."""
    assert ask(get(CREDENTIALS, method="HEAD"), REQUIRED).status == 401
    head = ask(get(CREDENTIALS, method="HEAD"), OPTIONAL)
    assert (head.status, head.body) == (200, "")


# --- bodies are text/plain -----------------------------------------------------------


def _one_of_each_status() -> dict[int, Response]:
    token = fresh_token()
    disabled = ImdsSettings(http_endpoint="disabled")
    return {
        200: ask(put_token("60")),
        400: ask(put_token(None)),
        401: ask(get(CREDENTIALS)),
        403: ask(get(CREDENTIALS, token), disabled),
        404: ask(get("/nope", token)),
        405: ask(get(TOKEN_PATH)),
    }


def _content_types(raw: bytes) -> list[str]:
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return [v.strip() for k, _, v in (line.partition(":") for line in head)
            if k.strip().lower() == "content-type"]


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 405])
def test_every_status_is_sent_as_text_plain(status):
    """[C] "Bodies are `text/plain`": on the wire, one Content-Type: text/plain."""
    response = _one_of_each_status()[status]
    assert response.status == status
    raw = response.to_bytes()
    assert raw.startswith(f"HTTP/1.1 {status} ".encode())
    assert _content_types(raw) == ["text/plain"]
    assert raw.partition(b"\r\n\r\n")[2] == response.body.encode()


# --- totality: every request gets one of the documented codes ------------------------

_latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                  max_size=40)
# Digits, and latin-1 characters that look like digits to str.isdigit().
_digitish = st.text(st.sampled_from("0123456789 \u00b2\u00b3\u00b9"), min_size=1, max_size=6)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]),
    path=st.sampled_from([TOKEN_PATH, "/2021-03-23/api/token", CREDENTIALS, "/nope"]),
    ttl=st.one_of(st.none(), _latin1, st.integers(-5, 30000).map(str), _digitish),
    token=st.one_of(st.none(), _latin1, st.builds(lambda s: "AQAE" + s, _latin1),
                    st.builds(lambda mac: _forged(f"{INSTANCE}|{int(NOW) + 60}", mac), _latin1)),
    mode=st.sampled_from([REQUIRED, OPTIONAL]),
)
def test_respond_answers_every_request_with_a_documented_code(method, path, ttl, token, mode):
    """[C] The status codes are 200, 400, 401, 403, 404 (and [U] 405): whatever a
    client sends (header values are latin-1 text off the wire), IMDS answers
    with one of them and never fails."""
    headers = tuple((k, v) for k, v in ((TTL_HEADER, ttl), (TOKEN_HEADER, token)) if v is not None)
    response = ask(Request(method, path, headers), mode)
    assert response.status in {200, 400, 401, 403, 404, 405}
