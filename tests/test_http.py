"""HTTP/1.1 values and their wire bytes (hopsim.http).

`parse_request` and `parse_response` are documented as the inverses of
`Request.to_bytes` and `Response.to_bytes`; header names are case-insensitive
(RFC 9110 5.1), and `with_header` replaces earlier values.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hopsim.http import Request, Response, parse_request, parse_response

TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"
XFF = "X-Forwarded-For"
HOST = "169.254.169.254"


# --- round trips ----------------------------------------------------------------

REQUESTS = [
    pytest.param(Request("PUT", "/latest/api/token", ((TTL, "21600"),)), id="token-put"),
    pytest.param(Request("GET", "/latest/meta-data/iam/security-credentials/",
                         ((TOKEN, "AQAEabc.0123456789abcdef"),)), id="get-with-token"),
    pytest.param(Request("GET", "/latest/meta-data/"), id="tokenless-get"),
    pytest.param(Request("HEAD", "/latest/meta-data/instance-id", ((TOKEN, "t"),)), id="head"),
    pytest.param(Request("PUT", "/latest/api/token", ((TTL, "60"), (XFF, "10.0.0.1, 10.0.0.2"))),
                 id="put-with-xff"),
    pytest.param(Request("POST", "/submit?a=1&b=2", (("Content-Type", "text/plain"),),
                         "line one\r\nline two\r\n\r\nafter a blank line"), id="post-body"),
    pytest.param(Request("GET", "/x", (("X-Empty", ""), ("X-Colon", "a: b: c"))),
                 id="odd-values"),
]


@pytest.mark.parametrize("request_", REQUESTS)
def test_request_round_trips(request_):
    assert parse_request(request_.to_bytes(HOST)) == request_


@pytest.mark.parametrize("request_", REQUESTS)
def test_request_bytes_are_http_1_1_with_host_and_framing(request_):
    raw = request_.to_bytes(HOST)
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep
    lines = head.decode().split("\r\n")
    assert lines[0] == f"{request_.method} {request_.path} HTTP/1.1"
    assert f"Host: {HOST}" in lines[1:]
    assert body == request_.body.encode()
    if request_.method in ("PUT", "POST") or request_.body:
        assert f"Content-Length: {len(body)}" in lines[1:]


def test_ipv6_host_header_round_trips():
    request_ = Request("PUT", "/latest/api/token", ((TTL, "21600"),))
    raw = request_.to_bytes("[fd00:ec2::254]")
    assert b"\r\nHost: [fd00:ec2::254]\r\n" in raw
    assert parse_request(raw) == request_


RESPONSES = [
    pytest.param(Response(200, ((TTL, "21600"),), "AQAEaS0x.0123456789abcdef"), id="token"),
    pytest.param(Response(401, (), "Unauthorized\n"), id="401"),
    pytest.param(Response(403, (), "Forbidden\n"), id="403"),
    pytest.param(Response(404, (), "Not Found\n"), id="404"),
    pytest.param(Response(405, (("Allow", "PUT"),), "Method Not Allowed\n"), id="405"),
    pytest.param(Response(200, (), ""), id="empty-body"),
    pytest.param(Response(200, (), '{"Code": "Success"}\r\n\r\ntrailing'), id="body-with-crlfcrlf"),
]


@pytest.mark.parametrize("response", RESPONSES)
def test_response_round_trips(response):
    assert parse_response(response.to_bytes()) == response


@pytest.mark.parametrize("response", RESPONSES)
def test_response_bytes_have_status_line_and_length(response):
    raw = response.to_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == f"HTTP/1.1 {response.status} {response.phrase}"
    assert f"Content-Length: {len(body)}" in lines[1:]
    assert "Content-Type: text/plain" in lines[1:]
    assert body == response.body.encode()


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(Request("PUT", "/x", (), "caf\u00e9"), id="body"),
        pytest.param(Request("GET", "/x", (("X-Note", "caf\u00e9"),)), id="header-value"),
    ],
)
def test_non_ascii_request_round_trips(request_):
    """The documented inverse holds for text outside ASCII too: whatever
    encoding to_bytes writes, parse_request must read the same one."""
    assert parse_request(request_.to_bytes(HOST)) == request_


def test_non_ascii_response_round_trips():
    response = Response(200, (), "caf\u00e9\n")
    raw = response.to_bytes()
    assert f"Content-Length: {len(response.body.encode())}".encode() in raw
    assert parse_response(raw) == response


# Property: any well-formed ASCII message round-trips.
_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FRAMING = {"host", "content-length", "content-type", "connection"}
_names = st.text(st.sampled_from(_TCHAR), min_size=1, max_size=20).filter(
    lambda n: n.lower() not in _FRAMING)
# Printable ASCII; surrounding whitespace is not part of a field value (RFC 9110 5.5).
_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).filter(
    lambda v: v == v.strip())
_headers = st.lists(st.tuples(_names, _values), max_size=6).map(tuple)
_ascii_body = st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=80)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]),
       path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
           lambda p: "/" + p),
       headers=_headers, body=_ascii_body)
def test_any_ascii_request_round_trips(method, path, headers, body):
    request_ = Request(method, path, headers, body)
    assert parse_request(request_.to_bytes(HOST)) == request_


@settings(max_examples=200, derandomize=True, deadline=None)
@given(status=st.sampled_from([200, 400, 401, 403, 404, 405, 504]), headers=_headers,
       body=_ascii_body)
def test_any_ascii_response_round_trips(status, headers, body):
    response = Response(status, headers, body)
    assert parse_response(response.to_bytes()) == response


# --- header lookup is case-insensitive -------------------------------------------


@pytest.mark.parametrize(
    "asked", [TTL, TTL.lower(), TTL.upper(), "x-AWS-ec2-METADATA-token-TTL-seconds"])
def test_request_header_lookup_ignores_case(asked):
    request_ = Request("PUT", "/latest/api/token", ((TTL.lower(), "60"),))
    assert request_.header(asked) == "60"


@pytest.mark.parametrize("asked", [TTL, TTL.lower(), TTL.upper()])
def test_response_header_lookup_ignores_case(asked):
    response = Response(200, ((TTL.upper(), "21600"),), "token")
    assert response.header(asked) == "21600"


def test_header_lookup_after_parsing_ignores_case():
    raw = (b"PUT /latest/api/token HTTP/1.1\r\nhost: 169.254.169.254\r\n"
           b"x-forwarded-for: 10.0.0.9\r\nX-AWS-EC2-METADATA-TOKEN-TTL-SECONDS: 5\r\n"
           b"content-length: 0\r\n\r\n")
    request_ = parse_request(raw)
    assert request_.header(XFF) == "10.0.0.9"
    assert request_.header(TTL) == "5"
    # Framing headers are the parser's business, whatever their case.
    assert request_.header("Host") is None
    assert request_.header("Content-Length") is None
    response = parse_response(b"HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds: 9\r\n"
                              b"content-type: text/plain\r\ncontent-length: 1\r\n\r\nt")
    assert response.header(TTL) == "9"
    assert response.header("Content-Type") is None


def test_missing_header_is_none():
    assert Request("GET", "/").header(XFF) is None
    assert Response(200).header(TTL) is None


def test_header_returns_the_first_value():
    request_ = Request("GET", "/", ((XFF, "1.1.1.1"), (XFF.lower(), "2.2.2.2")))
    assert request_.header(XFF) == "1.1.1.1"


# --- with_header replaces --------------------------------------------------------


def test_with_header_replaces_every_earlier_value_whatever_its_case():
    before = Request("GET", "/", (("x-forwarded-for", "1.1.1.1"), (TOKEN, "t"),
                                  ("X-FORWARDED-FOR", "2.2.2.2")))
    after = before.with_header(XFF, "1.1.1.1, 3.3.3.3")
    assert after.header(XFF) == "1.1.1.1, 3.3.3.3"
    assert [k for k, _ in after.headers if k.lower() == XFF.lower()] == [XFF]
    assert after.header(TOKEN) == "t"  # other headers kept
    assert (after.method, after.path, after.body) == (before.method, before.path, before.body)
    # Values are immutable: the original is unchanged.
    assert before.header(XFF) == "1.1.1.1"
    assert len(before.headers) == 3


def test_with_header_adds_a_missing_header():
    before = Request("PUT", "/latest/api/token", ((TTL, "60"),))
    after = before.with_header(XFF, "10.0.0.1")
    assert after.headers == ((TTL, "60"), (XFF, "10.0.0.1"))
    assert before.headers == ((TTL, "60"),)


def test_with_header_result_round_trips_with_one_value():
    request_ = Request("PUT", "/latest/api/token", ((TTL, "60"),)).with_header(TTL, "120")
    parsed = parse_request(request_.to_bytes(HOST))
    assert parsed == request_
    assert [v for k, v in parsed.headers if k.lower() == TTL.lower()] == ["120"]
