"""The trust policy and the forwarding headers (waitress_like.proxy), on plain environ dicts."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitress_like.config import Settings
from waitress_like.errors import ConfigError
from waitress_like.haproxy import ProxyProtocolReader
from waitress_like.proxy import (
    MalformedProxyHeader,
    ProxyPolicy,
    TrustedProxies,
    parse_forwarded,
    trusted_proxy_from_environment,
)

FORWARDING_KEYS = {
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_BY",
}


def base_environ(**headers: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REMOTE_ADDR": "10.0.0.5",
        "REMOTE_PORT": "40000",
        "SERVER_NAME": "waitress.invalid",
        "SERVER_PORT": "8080",
        "HTTP_HOST": "backend:8080",
        "wsgi.url_scheme": "http",
    }
    environ.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    return environ


def policy(
    headers: str = "x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port", **kw: Any
) -> ProxyPolicy:
    trusted = kw.pop("trusted", "10.0.0.0/8")
    return ProxyPolicy(TrustedProxies.parse(trusted), trusted_headers=headers.split(), **kw)


def applied(environ: dict[str, Any], trusted: bool = True, **kw: Any) -> dict[str, Any]:
    policy(**kw).apply(environ, trusted)
    return environ


def seen(environ: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme")
    return tuple(environ.get(key) for key in keys)


# -- TrustedProxies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, peer, is_unix, trusted",
    [
        ("*", "203.0.113.9", False, True),
        ("*", "localhost", True, True),
        ("127.0.0.1", "127.0.0.1", False, True),
        ("127.0.0.1", "127.0.0.2", False, False),
        ("127.0.0.1", "localhost", True, False),
        ("localhost", "localhost", True, True),
        ("localhost", "127.0.0.1", False, False),  # localhost means unix-socket peers only
        ("10.0.0.0/8, ::1", "10.255.0.1", False, True),
        ("10.0.0.0/8, ::1", "11.0.0.1", False, False),
        ("10.0.0.0/8, ::1", "::1", False, True),
        ("10.0.0.0/8 [2001:db8::]/32", "2001:db8:1::5", False, True),
        ("10.0.0.0/8", "::ffff:10.1.2.3", False, True),  # a dual-stack socket's IPv4 peer
        ("fe80::/10", "fe80::1%eth0", False, True),
        ("10.0.0.0/8", "not an address", False, False),
    ],
)
def test_trusted_proxies(setting: str, peer: str, is_unix: bool, trusted: bool):
    assert TrustedProxies.parse(setting).contains(peer, is_unix) is trusted
    assert ProxyPolicy(TrustedProxies.parse(setting)).is_trusted(peer, is_unix) is trusted


def test_no_trusted_proxy_trusts_nobody():
    assert not ProxyPolicy(None).is_trusted("127.0.0.1", False)
    assert not ProxyPolicy(None).is_trusted("localhost", True)


def test_trusted_proxies_text_and_equality():
    value = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8 localhost ::1 127.0.0.1")
    assert str(value) == "localhost, 127.0.0.1, 10.0.0.0/8, ::1"
    assert value == "::1 localhost 10.0.0.0/8 127.0.0.1/32"
    assert value != "127.0.0.1"
    assert value != "nonsense!"
    assert value != 5
    assert hash(value) == hash(TrustedProxies.parse(str(value)))
    assert TrustedProxies.parse("*") == "*" and str(TrustedProxies.parse("*")) == "*"
    assert repr(TrustedProxies.parse("*")) == "TrustedProxies('*')"
    assert TrustedProxies.parse(value) is value
    with pytest.raises(AttributeError):
        value.any_peer = True  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("proxy.example.com", "not an IP address"),
        ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8"),
        ("*, 10.0.0.1", "cannot be combined"),
        ("10.0.0.0/33", "not an IP address"),
        (" , ", "at least one"),
    ],
)
def test_trusted_proxies_errors(text: str, reason: str):
    with pytest.raises(ValueError, match=reason):
        TrustedProxies.parse(text)


def test_trusted_proxy_setting_is_parsed():
    settings = Settings(trusted_proxy="127.0.0.1 10.0.0.0/8", trusted_proxy_headers="forwarded")
    assert isinstance(settings.trusted_proxy, TrustedProxies)
    assert ProxyPolicy.from_settings(settings).is_trusted("10.2.3.4", False)
    with pytest.raises(ConfigError, match="trusted_proxy"):
        Settings(trusted_proxy="proxy.example.com", trusted_proxy_headers="forwarded")


def test_proxy_protocol_setting():
    assert Settings().proxy_protocol == "off"
    with pytest.raises(ConfigError, match="proxy_protocol.*without trusted_proxy"):
        Settings(proxy_protocol="v1")
    # An L4 proxy relays the client's own headers: no x-forwarded-proto fallback then.
    settings = Settings(trusted_proxy="10.0.0.1", proxy_protocol="auto")
    assert settings.trusted_proxy_headers == frozenset()
    assert ProxyPolicy.from_settings(settings).protocol == "auto"


# -- FORWARDED_ALLOW_IPS ------------------------------------------------------------------------


def test_forwarded_allow_ips_fills_an_unset_trusted_proxy():
    environ = {"FORWARDED_ALLOW_IPS": "127.0.0.1,::1"}
    assert trusted_proxy_from_environment({}, environ) == {"trusted_proxy": "127.0.0.1,::1"}
    assert trusted_proxy_from_environment({"threads": 2}, {}) == {"threads": 2}
    assert trusted_proxy_from_environment({}, {"FORWARDED_ALLOW_IPS": " "}) == {}
    # Given, even as None or empty, the setting wins over the environment.
    for explicit in ("10.0.0.1", None, ""):
        assert trusted_proxy_from_environment({"trusted_proxy": explicit}, environ) == {
            "trusted_proxy": explicit
        }


def test_forwarded_allow_ips_errors_name_the_variable():
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
        trusted_proxy_from_environment({}, {"FORWARDED_ALLOW_IPS": "proxy.local"})


# -- policy odds and ends -----------------------------------------------------------------------


def test_policy_argument_errors():
    with pytest.raises(ValueError):
        ProxyPolicy(None, trusted_count=0)
    with pytest.raises(ValueError):
        ProxyPolicy(None, protocol="v9")
    with pytest.raises(ValueError):
        ProxyPolicy(None, trusted_headers=["x-real-ip"])


def test_rewrites_environ_only_when_there_is_something_to_do():
    assert not ProxyPolicy(None, clear_untrusted=False).rewrites_environ
    assert ProxyPolicy(None).rewrites_environ
    assert ProxyPolicy(None, clear_untrusted=False, log_untrusted=True).rewrites_environ


def test_preamble_readers():
    assert ProxyPolicy(None).preamble_reader(True) is None
    assert isinstance(policy(protocol="v2").preamble_reader(True), ProxyProtocolReader)
    assert isinstance(policy(protocol="v2").preamble_reader(False), ProxyProtocolReader)


def test_from_settings_tolerates_a_plain_string():
    class Plain:
        trusted_proxy = "127.0.0.1"
        trusted_proxy_count = 1
        trusted_proxy_headers = frozenset({"forwarded"})
        clear_untrusted_proxy_headers = True
        log_untrusted_proxy_headers = False
        proxy_protocol = "off"

    assert ProxyPolicy.from_settings(Plain()).is_trusted("127.0.0.1", False)


# -- untrusted peers ----------------------------------------------------------------------------

FORGED = {
    "forwarded": "for=6.6.6.6;proto=https;host=evil.example",
    "x_forwarded_for": "6.6.6.6",
    "x_forwarded_host": "evil.example",
    "x_forwarded_proto": "https",
    "x_forwarded_port": "443",
    "x_forwarded_by": "6.6.6.7",
}


def test_untrusted_peer_changes_nothing_and_loses_the_headers():
    environ = applied(base_environ(**FORGED), trusted=False)
    assert seen(environ) == ("10.0.0.5", "40000", "backend:8080", "waitress.invalid", "8080", "http")
    assert not FORWARDING_KEYS & set(environ)


def test_untrusted_peer_even_with_garbage_gets_no_400():
    environ = applied(base_environ(forwarded='for="unterminated', x_forwarded_for="<script>"), trusted=False)
    assert not FORWARDING_KEYS & set(environ)


def test_untrusted_headers_are_kept_when_asked(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, "waitress_like")
    environ = applied(base_environ(**FORGED), trusted=False, clear_untrusted=False)
    assert set(environ) >= FORWARDING_KEYS
    assert seen(environ)[0] == "10.0.0.5"
    assert not caplog.records  # logging is off by default


def test_untrusted_headers_are_logged_when_asked(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, "waitress_like")
    applied(base_environ(x_forwarded_for="6.6.6.6", forwarded="for=x"), trusted=False, log_untrusted=True)
    (record,) = caplog.records
    assert "removed untrusted forwarding headers from 10.0.0.5" in record.getMessage()
    assert "Forwarded" in record.getMessage() and "X-Forwarded-For" in record.getMessage()
    caplog.clear()
    applied(base_environ(x_forwarded_for="6.6.6.6"), trusted=False, log_untrusted=True, clear_untrusted=False)
    assert "received untrusted" in caplog.records[0].getMessage()


def test_trusted_peer_loses_the_headers_it_is_not_trusted_for():
    environ = applied(base_environ(**FORGED), headers="x-forwarded-for")
    assert environ["REMOTE_ADDR"] == "6.6.6.6"
    assert seen(environ)[2:] == ("backend:8080", "waitress.invalid", "8080", "http")
    assert FORWARDING_KEYS & set(environ) == {"HTTP_X_FORWARDED_FOR"}
    environ = applied(base_environ(**FORGED), headers="forwarded")
    assert FORWARDING_KEYS & set(environ) == {"HTTP_FORWARDED"}
    environ = applied(base_environ(**FORGED), headers="x-forwarded-by")
    assert FORWARDING_KEYS & set(environ) == {"HTTP_X_FORWARDED_BY"}
    assert environ["REMOTE_ADDR"] == "10.0.0.5"


# -- X-Forwarded-* ------------------------------------------------------------------------------


def test_x_forwarded_all_four():
    environ = applied(
        base_environ(
            x_forwarded_for="192.0.2.1",
            x_forwarded_host="example.com",
            x_forwarded_proto="https",
            x_forwarded_port="8443",
        )
    )
    assert seen(environ) == ("192.0.2.1", None, "example.com:8443", "example.com", "8443", "https")


@pytest.mark.parametrize(
    "headers, expected",
    [
        # proto alone: the default port of the scheme; the Host header is untouched
        ({"x_forwarded_proto": "HTTPS"}, ("backend:8080", "waitress.invalid", "443", "https")),
        ({"x_forwarded_proto": "http"}, ("backend:8080", "waitress.invalid", "80", "http")),
        # host alone
        ({"x_forwarded_host": "example.com"}, ("example.com", "example.com", "8080", "http")),
        ({"x_forwarded_host": "example.com:8000"}, ("example.com:8000", "example.com", "8000", "http")),
        ({"x_forwarded_host": "[2001:db8::1]"}, ("[2001:db8::1]", "[2001:db8::1]", "8080", "http")),
        ({"x_forwarded_host": "[2001:db8::1]:81"}, ("[2001:db8::1]:81", "[2001:db8::1]", "81", "http")),
        # the port in the host wins over X-Forwarded-Port
        ({"x_forwarded_host": "example.com:8000", "x_forwarded_port": "9000"}, ("example.com:8000", "example.com", "8000", "http")),
        # a default port is left out of HTTP_HOST, another one is added
        ({"x_forwarded_host": "example.com", "x_forwarded_proto": "https"}, ("example.com", "example.com", "443", "https")),
        ({"x_forwarded_host": "example.com", "x_forwarded_proto": "https", "x_forwarded_port": "80"}, ("example.com:80", "example.com", "80", "https")),
        ({"x_forwarded_host": "example.com", "x_forwarded_proto": "http", "x_forwarded_port": "443"}, ("example.com:443", "example.com", "443", "http")),
        ({"x_forwarded_host": "example.com", "x_forwarded_port": "80"}, ("example.com", "example.com", "80", "http")),
        ({"x_forwarded_port": "8443"}, ("backend:8080", "waitress.invalid", "8443", "http")),
        ({"x_forwarded_port": "00443"}, ("backend:8080", "waitress.invalid", "443", "http")),
    ],
)  # fmt: skip
def test_x_forwarded_host_proto_port(headers: dict[str, str], expected: tuple[str, ...]):
    assert seen(applied(base_environ(**headers)))[2:] == expected


@pytest.mark.parametrize(
    "value, address, port",
    [
        ("192.0.2.1", "192.0.2.1", None),
        ("192.0.2.1:4711", "192.0.2.1", "4711"),
        ("2001:db8::1", "2001:db8::1", None),
        ("[2001:db8::1]", "2001:db8::1", None),
        ("[2001:db8::1]:4711", "2001:db8::1", "4711"),
        ('"[2001:db8::1]:4711"', "2001:db8::1", "4711"),
        ("unknown", "unknown", None),
        ("_hidden", "_hidden", None),
        ("_hidden:_port", "_hidden", None),
        (" 192.0.2.1 ", "192.0.2.1", None),
    ],
)
def test_x_forwarded_for_values(value: str, address: str, port: str | None):
    environ = applied(base_environ(x_forwarded_for=value))
    assert (environ["REMOTE_ADDR"], environ.get("REMOTE_PORT")) == (address, port)


@pytest.mark.parametrize(
    "count, value, address, kept",
    [
        (1, "6.6.6.6, 192.0.2.1", "192.0.2.1", "192.0.2.1"),
        (2, "6.6.6.6, 192.0.2.1, 10.0.0.7", "192.0.2.1", "192.0.2.1, 10.0.0.7"),
        (2, "192.0.2.1", "192.0.2.1", "192.0.2.1"),  # fewer hops than trusted: the leftmost
        (3, "garbage!, 192.0.2.1, 10.0.0.7, 10.0.0.8", "192.0.2.1", "192.0.2.1, 10.0.0.7, 10.0.0.8"),
    ],
)
def test_x_forwarded_for_hops(count: int, value: str, address: str, kept: str):
    environ = applied(base_environ(x_forwarded_for=value), trusted_count=count)
    assert environ["REMOTE_ADDR"] == address
    assert environ["HTTP_X_FORWARDED_FOR"] == kept  # the client's own entries are cut off


def test_x_forwarded_lists_use_the_same_hop():
    environ = applied(
        base_environ(
            x_forwarded_for="6.6.6.6, 192.0.2.1, 10.0.0.7",
            x_forwarded_host="evil, example.com, internal",
            x_forwarded_proto="http, https, http",
            x_forwarded_port="1, 8443, 8080",
        ),
        trusted_count=2,
    )
    assert seen(environ) == ("192.0.2.1", None, "example.com:8443", "example.com", "8443", "https")
    assert environ["HTTP_X_FORWARDED_HOST"] == "example.com, internal"


def test_empty_header_values_count_as_absent():
    environ = applied(base_environ(x_forwarded_for="", x_forwarded_proto="  "))
    assert seen(environ)[0] == "10.0.0.5" and environ["wsgi.url_scheme"] == "http"


@pytest.mark.parametrize(
    "headers",
    [
        {"x_forwarded_for": "not-an-ip"},
        {"x_forwarded_for": "192.0.2.1:"},
        {"x_forwarded_for": "192.0.2.1:0"},
        {"x_forwarded_for": "192.0.2.1:65536"},
        {"x_forwarded_for": "192.0.2.01"},
        {"x_forwarded_for": "[192.0.2.1]"},
        {"x_forwarded_for": "[2001:db8::g]"},
        {"x_forwarded_for": "fe80::1%eth0"},
        {"x_forwarded_for": "192.0.2.1,"},
        {"x_forwarded_for": '"192.0.2.1'},
        {"x_forwarded_for": "192.0.2.1 192.0.2.2"},
        {"x_forwarded_host": "exa mple.com"},
        {"x_forwarded_host": "example.com:"},
        {"x_forwarded_host": "example.com:99999"},
        {"x_forwarded_host": "example.com/path"},
        {"x_forwarded_host": "[::g]"},
        {"x_forwarded_host": "a;b"},
        {"x_forwarded_proto": "ftp"},
        {"x_forwarded_proto": "https;"},
        {"x_forwarded_port": "http"},
        {"x_forwarded_port": "0"},
        {"x_forwarded_port": "70000"},
        {"x_forwarded_port": "-1"},
    ],
)
def test_x_forwarded_malformed(headers: dict[str, str]):
    with pytest.raises(MalformedProxyHeader) as raised:
        applied(base_environ(**headers))
    assert raised.value.status_hint == 400
    assert raised.value.header.lower().replace("-", "_") in headers


# -- Forwarded ----------------------------------------------------------------------------------


def forwarded(value: str, count: int = 1) -> dict[str, Any]:
    return applied(base_environ(forwarded=value), headers="forwarded", trusted_count=count)


def test_forwarded_rfc7239_examples():
    # RFC 7239 section 4 and 7.4 examples.
    assert forwarded('for="_gazonk"')["REMOTE_ADDR"] == "_gazonk"
    environ = forwarded('For="[2001:db8:cafe::17]:4711"')
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("2001:db8:cafe::17", "4711")
    environ = forwarded("for=192.0.2.60;proto=http;by=203.0.113.43")
    assert seen(environ) == ("192.0.2.60", None, "backend:8080", "waitress.invalid", "80", "http")
    environ = forwarded("for=192.0.2.43, for=198.51.100.17", count=2)
    assert environ["REMOTE_ADDR"] == "192.0.2.43"
    assert forwarded("for=192.0.2.43, for=198.51.100.17")["REMOTE_ADDR"] == "198.51.100.17"
    assert forwarded("for=unknown")["REMOTE_ADDR"] == "unknown"
    assert forwarded("for=UNKNOWN")["REMOTE_ADDR"] == "UNKNOWN"


def test_forwarded_everything():
    environ = forwarded('for="192.0.2.1:4711";proto=https;host="example.com:8443";by=_proxy')
    assert seen(environ) == ("192.0.2.1", "4711", "example.com:8443", "example.com", "8443", "https")


def test_forwarded_oldest_trusted_value_wins_per_parameter():
    value = 'for=6.6.6.6;host=evil, for=192.0.2.1;host="example.com";proto=https, for=10.0.0.7;host="internal:8080";proto=http'
    environ = forwarded(value, count=2)
    assert seen(environ) == ("192.0.2.1", None, "example.com", "example.com", "443", "https")
    assert (
        environ["HTTP_FORWARDED"]
        == 'for=192.0.2.1;host="example.com";proto=https, for=10.0.0.7;host="internal:8080";proto=http'
    )
    # An older element without the parameter leaves a newer one's value in place.
    environ = forwarded("for=192.0.2.1, proto=https;host=example.com", count=2)
    assert seen(environ) == ("192.0.2.1", None, "example.com", "example.com", "443", "https")


@pytest.mark.parametrize(
    "value, address",
    [
        ("for=192.0.2.1;;proto=http;", "192.0.2.1"),  # empty pairs are allowed (section 4)
        (" for=192.0.2.1 ; proto=http ", "192.0.2.1"),  # whitespace around ';' tolerated
        (",, for=192.0.2.1 ,", "192.0.2.1"),  # empty list elements are skipped
        ('for=192.0.2.1;ext="a, b; c"', "192.0.2.1"),  # separators inside quotes
        ('for="192.0.2.1";x="\\"q\\\\"', "192.0.2.1"),  # quoted-pairs
        ('for="\\1\\9\\2.0.2.1"', "192.0.2.1"),
    ],
)
def test_forwarded_syntax_variants(value: str, address: str):
    assert forwarded(value)["REMOTE_ADDR"] == address


def test_forwarded_keeps_unknown_parameters():
    (element,) = parse_forwarded('for=a;secret="x;y";by=b')
    assert (element.for_, element.by, element.extensions) == ("a", "b", {"secret": "x;y"})
    assert repr(element) == "ForwardedElement('for=a;secret=\"x;y\";by=b')"


def test_forwarded_without_elements_changes_nothing():
    environ = forwarded(" , ")
    assert seen(environ)[0] == "10.0.0.5" and environ["HTTP_FORWARDED"] == ""


@pytest.mark.parametrize(
    "value",
    [
        "for",
        "for=",
        "=192.0.2.1",
        "for =192.0.2.1",
        "for= 192.0.2.1",
        "for=192.0.2.1 proto=http",
        "for=192.0.2.1;for=192.0.2.2",  # section 4: a parameter at most once per element
        "for=192.0.2.1;FOR=192.0.2.2",
        'for="192.0.2.1',
        'for="192.0.2.1"x',
        "for=2001:db8::1",  # unquoted ':' is not a token character
        'for="[2001:db8::1"',
        'for="2001:db8::1]"',
        'for="[2001:db8::zz]"',
        'for="192.0.2.1:99999"',
        'for="192.0.2.1:"',
        "for=hostname",
        "for=_",
        'for="_a:_"',
        "for=192.0.2.1;proto=ftp",
        'for=192.0.2.1;host="a b"',
        "for=192.0.2.1;host=",
        'for="192.0.2.1\x00"',
        "for=192.0.2.1\x7f",
        'for=192.0.2.1, for=6.6.6.6;host="a/b"',
    ],
)
def test_forwarded_malformed(value: str):
    with pytest.raises(MalformedProxyHeader) as raised:
        forwarded(value)
    assert raised.value.header == "Forwarded"
    assert raised.value.value == value


def test_malformed_hops_outside_the_trusted_count_are_not_judged():
    # X-Forwarded-For is a plain list: what the client wrote on the left is never parsed.
    assert applied(base_environ(x_forwarded_for="<garbage>, 192.0.2.1"))["REMOTE_ADDR"] == "192.0.2.1"
    # Forwarded needs one parse of the whole value (quoted strings may hold commas), but
    # only the trusted elements' values are checked.
    assert forwarded("for=hostname, for=192.0.2.1")["REMOTE_ADDR"] == "192.0.2.1"


# -- properties ---------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
tokens = st.text(TCHAR, min_size=1, max_size=8)
quoted_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=10
)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render(value: str, force_quotes: bool) -> str:
    if force_quotes or not value or any(char not in TCHAR for char in value):
        return _quote(value)
    return value


nodes = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
    st.just("unknown"),
    st.text("abcXYZ09._-", min_size=1, max_size=6).map(lambda text: "_" + text),
)
node_ports = st.one_of(
    st.none(),
    st.integers(1, 65535).map(str),
    st.text("abc0_", min_size=1, max_size=4).map(lambda text: "_" + text),
)
elements = st.fixed_dictionaries(
    {},
    optional={
        "for": st.tuples(nodes, node_ports),
        "host": st.sampled_from(["example.com", "example.com:8443", "[::1]:81", "a-b.c"]),
        "proto": st.sampled_from(["http", "https", "HTTPS"]),
        "by": quoted_text,
        "ext": quoted_text,
    },
)


@PROPERTY_SETTINGS
@given(elements=st.lists(elements, max_size=5), quotes=st.booleans(), count=st.integers(1, 4), data=st.data())
def test_generated_forwarded_headers_read_back(
    elements: list[dict[str, Any]], quotes: bool, count: int, data: st.DataObject
):
    texts = []
    for element in elements:
        if "for" in element:
            node, port = element["for"]
            element["for"] = node + (":" + port if port else "")
            element["for_parts"] = (node.strip("[]"), port if port and not port.startswith("_") else None)
        pairs = [
            f"{data.draw(st.sampled_from([name, name.upper()]))}={_render(value, quotes)}"
            for name, value in element.items()
            if name != "for_parts"
        ]
        texts.append(";".join(pairs))
    value = data.draw(st.sampled_from([",", ", ", " ,\t"])).join(texts)
    parsed = parse_forwarded(value)
    non_empty = [element for element in elements if element]
    assert [(e.for_, e.host, e.proto, e.by) for e in parsed] == [
        (e.get("for"), e.get("host"), e.get("proto"), e.get("by")) for e in non_empty
    ]
    environ = forwarded(value, count)
    trusted = non_empty[-count:]
    expected_for = next((e["for_parts"] for e in trusted if "for" in e), ("10.0.0.5", "40000"))
    assert (environ["REMOTE_ADDR"], environ.get("REMOTE_PORT")) == expected_for
    expected_proto = next((e["proto"].lower() for e in trusted if "proto" in e), "http")
    assert environ["wsgi.url_scheme"] == expected_proto


@PROPERTY_SETTINGS
@given(value=st.text(st.sampled_from(list(TCHAR + ' ="\\,;\t:[]\x00\xe9')), max_size=40))
def test_any_forwarded_value_parses_or_is_malformed(value: str):
    try:
        parse_forwarded(value)
        forwarded(value)
    except MalformedProxyHeader:
        pass


@PROPERTY_SETTINGS
@given(
    value=st.text(st.sampled_from(list('0123456789abcdef.:[]_, "unknown')), max_size=30),
    name=st.sampled_from(["x_forwarded_for", "x_forwarded_host", "x_forwarded_proto", "x_forwarded_port"]),
    count=st.integers(1, 3),
)
def test_any_x_forwarded_value_applies_or_is_malformed(value: str, name: str, count: int):
    try:
        environ = applied(base_environ(**{name: value}), trusted_count=count)
    except MalformedProxyHeader:
        return
    if environ["REMOTE_ADDR"] != "10.0.0.5":
        address = environ["REMOTE_ADDR"]
        assert address in ("unknown",) or address.startswith("_") or ipaddress.ip_address(address)
