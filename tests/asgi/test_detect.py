"""Which interface serve() picks, the interface and lifespan settings, and their errors."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests.asgi.helpers import send_text
from tests.httpclient import request
from waitress_like import ConfigError, create_server
from waitress_like.asgi import ASGIAdapter, detect_interface, resolve_application
from waitress_like.config import SETTINGS_BY_NAME, Settings

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi"]


async def asgi_function(scope, receive, send):
    if scope["type"] == "lifespan":
        raise ValueError("no lifespan")
    await send_text(send, "asgi3")


async def asgi_with_defaults(scope, receive, send, extra=None):
    await asgi_function(scope, receive, send)


async def not_asgi(scope):
    pass


class Asgi3Object:
    async def __call__(self, scope, receive, send):
        await asgi_function(scope, receive, send)


class Asgi2Class:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await send_text(send, "asgi2")


class WsgiClass:
    """PEP 3333's "application as a class": instantiating it is calling the app."""

    def __init__(self, environ, start_response):
        start_response("200 OK", [])

    def __iter__(self):
        yield b"class"


@pytest.mark.parametrize(
    "app, expected",
    [
        (wsgi_app, "wsgi"),
        (WsgiClass, "wsgi"),
        (asgi_function, "asgi3"),
        (asgi_with_defaults, "asgi3"),
        (Asgi3Object(), "asgi3"),
        (functools.partial(asgi_with_defaults, extra=1), "asgi3"),
        (ASGIAdapter(asgi_function), "wsgi"),  # already a WSGI callable
        (print, "wsgi"),  # no signature to inspect: not a coroutine function either
    ],
)
def test_detect_interface(app: Any, expected: str):
    assert detect_interface(app) == expected


@pytest.mark.parametrize("app, hint", [(Asgi2Class, "asgi2"), (not_asgi, "does not take")])
def test_auto_refuses_to_guess(app: Any, hint: str):
    with pytest.raises(ConfigError, match=hint) as info:
        detect_interface(app)
    assert info.value.setting == "interface"


def test_resolve_application():
    assert resolve_application(wsgi_app) == (wsgi_app, None)
    adapter, hook = resolve_application(asgi_function, "auto", "off")
    assert isinstance(adapter, ASGIAdapter) and hook is adapter
    mine = ASGIAdapter(asgi_function)
    assert resolve_application(mine) == (mine, mine)  # the server drives its lifespan
    adapter, _ = resolve_application(Asgi2Class, "asgi2")
    assert isinstance(adapter, ASGIAdapter)
    forced, hook = resolve_application(asgi_function, "wsgi")
    assert forced is asgi_function and hook is None


@pytest.mark.parametrize(
    "app, interface, lifespan, setting",
    [
        (wsgi_app, "cgi", "auto", "interface"),
        (wsgi_app, "auto", "maybe", "lifespan"),
        (wsgi_app, "auto", "on", "lifespan"),  # lifespan=on needs an ASGI app
        ("not callable", "asgi3", "auto", "interface"),
    ],
)
def test_resolve_application_errors(app: Any, interface: str, lifespan: str, setting: str):
    with pytest.raises(ConfigError) as info:
        resolve_application(app, interface, lifespan)
    assert info.value.setting == setting


@pytest.mark.parametrize(
    "name, given, expected",
    [
        ("interface", "auto", "auto"),
        ("interface", " ASGI3 ", "asgi3"),
        ("interface", "asgi2", "asgi2"),
        ("interface", "wsgi", "wsgi"),
        ("lifespan", "On", "on"),
        ("lifespan", "off", "off"),
        ("lifespan", "auto", "auto"),
    ],
)
def test_settings_conversions(name: str, given: str, expected: str):
    assert SETTINGS_BY_NAME[name].parse(given) == expected


@pytest.mark.parametrize(
    "name, value", [("interface", "asgi"), ("interface", 3), ("lifespan", True), ("lifespan", "")]
)
def test_settings_errors_name_the_setting(name: str, value: Any):
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping({name: value})
    assert info.value.setting == name


def test_settings_defaults():
    settings = Settings()
    assert (settings.interface, settings.lifespan) == ("auto", "auto")


@pytest.mark.parametrize(
    "app, settings, body",
    [
        (wsgi_app, {}, b"wsgi"),
        (asgi_function, {}, b"asgi3"),
        (Asgi3Object(), {"interface": "asgi3"}, b"asgi3"),
        (Asgi2Class, {"interface": "asgi2", "lifespan": "off"}, b"asgi2"),
        (ASGIAdapter(asgi_function, lifespan="off"), {}, b"asgi3"),
    ],
)
def test_served_over_sockets(start_server, app: Any, settings: dict[str, Any], body: bytes):
    running = start_server(app, **settings)
    assert request(running.address, GET).body == body


def test_create_server_checks_the_application_before_binding():
    with pytest.raises(ConfigError, match="interface"):
        create_server(Asgi2Class, host="127.0.0.1", port=0)
