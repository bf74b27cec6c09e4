"""Django's ASGI handler through the bridge over real sockets.

Django's settings are process-global: this module serves the project of
``tests/frameworks/test_django.py`` (its URLconf and views), configured by that module's
``configure_project()`` whichever module runs first. Django's handler does
not do lifespan (it raises on that scope), so ``lifespan=auto`` carries on without it.
"""

from __future__ import annotations

import pytest

pytest.importorskip("django")

from tests.frameworks import contract  # noqa: E402
from tests.frameworks.test_django import configure_project  # noqa: E402
from tests.httpclient import request  # noqa: E402

pytestmark = pytest.mark.frameworks


@pytest.fixture(scope="module")
def django_asgi_app():
    configure_project()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


@pytest.fixture
def address(start_server, django_asgi_app):
    return start_server(django_asgi_app).address


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


def test_script_prefix_from_root_path(start_server, django_asgi_app):
    address = start_server(django_asgi_app, url_prefix="/site").address
    response = request(address, b"GET /site/items/5/abc?q=d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert response.status == 200
    assert response.body == contract.describe_item(5, "abc", "d").encode()
