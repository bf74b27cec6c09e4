"""Falcon served by waitress_like over real sockets: routing, forms, uploads, cookies, streaming."""

from __future__ import annotations

import falcon
import pytest

from tests.frameworks import contract

pytestmark = pytest.mark.frameworks


class ItemResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: int, name: str) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = contract.describe_item(item_id, name, req.get_param("q", required=True))


class FormResource:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = req.get_media()  # urlencoded: one value is a str, a repeated name a list
        tags = fields["tags"] if isinstance(fields["tags"], list) else [fields["tags"]]
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = contract.describe_form(fields["name"], tags)


class UploadResource:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        note = filename = data = None
        for part in req.get_media():
            if part.name == "note":
                note = part.text
            elif part.name == "upload":
                filename, data = part.filename, part.stream.read()
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = contract.describe_upload(note, filename, data)


class SetCookiesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Falcon marks cookies Secure unless told otherwise; these tests speak plain HTTP.
        resp.set_cookie("flavour", contract.COOKIE_FLAVOUR, path="/", http_only=True, secure=False)
        resp.set_cookie("visits", contract.COOKIE_VISITS, path="/", http_only=False, secure=False)
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "cookies set"


class GetCookiesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = contract.describe_cookies(req.cookies.get("flavour"), req.cookies.get("visits"))


class StreamResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = contract.stream_parts(req.get_param("gate", required=True))


def make_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/items/{item_id:int}/{name}", ItemResource())
    app.add_route("/form", FormResource())
    app.add_route("/upload", UploadResource())
    app.add_route("/cookies/set", SetCookiesResource())
    app.add_route("/cookies/get", GetCookiesResource())
    app.add_route("/stream", StreamResource())
    return app


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
