"""Django served by waitress_like over real sockets: routing, forms, uploads, cookies, streaming.

Django's settings are process-global, so the project is configured once, in code, by a
module-scoped fixture; its URLconf is this module's ``urlpatterns``.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from tests.frameworks import contract

pytestmark = pytest.mark.frameworks

TEXT = "text/plain; charset=utf-8"


@require_GET
def item(request: HttpRequest, item_id: int, name: str) -> HttpResponse:
    return HttpResponse(contract.describe_item(item_id, name, request.GET["q"]), content_type=TEXT)


@require_POST
def form(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        contract.describe_form(request.POST["name"], request.POST.getlist("tags")), content_type=TEXT
    )


@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    uploaded = request.FILES["upload"]
    body = contract.describe_upload(request.POST["note"], uploaded.name, uploaded.read())
    return HttpResponse(body, content_type=TEXT)


@require_GET
def set_cookies(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("cookies set", content_type=TEXT)
    response.set_cookie("flavour", contract.COOKIE_FLAVOUR, path="/", httponly=True)
    response.set_cookie("visits", contract.COOKIE_VISITS, path="/")
    return response


@require_GET
def get_cookies(request: HttpRequest) -> HttpResponse:
    cookies = request.COOKIES
    return HttpResponse(
        contract.describe_cookies(cookies.get("flavour"), cookies.get("visits")), content_type=TEXT
    )


@require_GET
def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(contract.stream_parts(request.GET["gate"]), content_type=TEXT)


urlpatterns = [
    path("items/<int:item_id>/<str:name>", item),
    path("form", form),
    path("upload", upload),
    path("cookies/set", set_cookies),
    path("cookies/get", get_cookies),
    path("stream", stream),
]


def configure_project() -> None:
    """Configure Django's process-wide settings for this module's project, once.

    The ASGI tests (tests/asgi/test_django_asgi.py) serve the same project and call this
    too, so whichever module runs first configures it and the other reuses it.
    """
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="waitress-like-tests-only",
            INSTALLED_APPS=[],
            MIDDLEWARE=[],  # no CSRF middleware: these views take cross-site POSTs
            DATABASES={},
            USE_TZ=True,
            # Django logs every 404 as a warning on stderr; these tests ask for 404s on purpose.
            LOGGING_CONFIG=None,
        )
    assert __name__ == settings.ROOT_URLCONF, "Django was configured elsewhere in this process"


@pytest.fixture(scope="module")
def django_app():
    configure_project()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


@pytest.fixture
def address(start_server, django_app):
    return start_server(django_app).address


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
