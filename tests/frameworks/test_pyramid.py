"""Pyramid served by waitress_like over real sockets: routing, forms, uploads, cookies, streaming."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    # WebOb 1.8 imports the stdlib ``cgi`` module, deprecated since Python 3.11; not our code.
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response

from tests.frameworks import contract

pytestmark = pytest.mark.frameworks

TEXT = "text/plain"


def text(body: str) -> Response:
    return Response(text=body, content_type=TEXT, charset="utf-8")


def item(request: Request) -> Response:
    item_id = int(request.matchdict["item_id"])
    return text(contract.describe_item(item_id, request.matchdict["name"], request.GET["q"]))


def form(request: Request) -> Response:
    return text(contract.describe_form(request.POST["name"], request.POST.getall("tags")))


def upload(request: Request) -> Response:
    # WebOb copies a large body into a temporary file (now ``wsgi.input``) and cgi puts each
    # uploaded file in another; it leaves both to the garbage collector, which warns.
    request.add_finished_callback(close_body_copy)
    uploaded = request.POST["upload"]
    with uploaded.file:
        data = uploaded.file.read()
    return text(contract.describe_upload(request.POST["note"], uploaded.filename, data))


def close_body_copy(request: Request) -> None:
    request.body_file_raw.close()


def set_cookies(request: Request) -> Response:
    response = text("cookies set")
    response.set_cookie("flavour", contract.COOKIE_FLAVOUR, path="/", httponly=True)
    response.set_cookie("visits", contract.COOKIE_VISITS, path="/")
    return response


def get_cookies(request: Request) -> Response:
    cookies = request.cookies
    return text(contract.describe_cookies(cookies.get("flavour"), cookies.get("visits")))


def stream(request: Request) -> Response:
    return Response(app_iter=contract.stream_parts(request.GET["gate"]), content_type=TEXT, charset="utf-8")


def make_app():
    with Configurator() as config:
        routes = [
            ("item", "/items/{item_id:\\d+}/{name}", "GET", item),
            ("form", "/form", "POST", form),
            ("upload", "/upload", "POST", upload),
            ("set_cookies", "/cookies/set", "GET", set_cookies),
            ("get_cookies", "/cookies/get", "GET", get_cookies),
            ("stream", "/stream", "GET", stream),
        ]
        for name, pattern, method, view in routes:
            config.add_route(name, pattern, request_method=method)
            config.add_view(view, route_name=name)
        return config.make_wsgi_app()


@pytest.fixture
def address(start_server):
    return start_server(make_app()).address


def test_routing_with_path_parameters(address):
    contract.check_routing(address)


def test_urlencoded_form_post(address):
    contract.check_form_post(address)


def test_multipart_file_upload(address):
    contract.check_upload(address)


def test_multipart_file_upload_sent_chunked(address):
    contract.check_chunked_upload(address)


def test_cookies_round_trip(address):
    contract.check_cookies(address)


def test_streamed_response_arrives_chunked_and_complete(address):
    contract.check_streaming(address)
