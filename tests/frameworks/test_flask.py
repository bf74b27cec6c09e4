"""Flask served by waitress_like over real sockets: routing, forms, uploads, cookies, streaming."""

from __future__ import annotations

import flask
import pytest

from tests.frameworks import contract

pytestmark = pytest.mark.frameworks


def make_app() -> flask.Flask:
    app = flask.Flask(__name__)

    def text(body: str) -> flask.Response:
        return flask.Response(body, mimetype="text/plain")

    @app.get("/items/<int:item_id>/<name>")
    def item(item_id: int, name: str) -> flask.Response:
        return text(contract.describe_item(item_id, name, flask.request.args["q"]))

    @app.post("/form")
    def form() -> flask.Response:
        fields = flask.request.form
        return text(contract.describe_form(fields["name"], fields.getlist("tags")))

    @app.post("/upload")
    def upload() -> flask.Response:
        upload = flask.request.files["upload"]
        return text(contract.describe_upload(flask.request.form["note"], upload.filename, upload.read()))

    @app.get("/cookies/set")
    def set_cookies() -> flask.Response:
        response = text("cookies set")
        response.set_cookie("flavour", contract.COOKIE_FLAVOUR, path="/", httponly=True)
        response.set_cookie("visits", contract.COOKIE_VISITS, path="/")
        return response

    @app.get("/cookies/get")
    def get_cookies() -> flask.Response:
        cookies = flask.request.cookies
        return text(contract.describe_cookies(cookies.get("flavour"), cookies.get("visits")))

    @app.get("/stream")
    def stream() -> flask.Response:
        return flask.Response(contract.stream_parts(flask.request.args["gate"]), mimetype="text/plain")

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
