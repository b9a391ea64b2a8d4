"""A trailing newline is part of what the emulator checks, as it is for Stripe.

Python's `$` also matches just before a final "\\n", so `re.match("^...$")` accepts `x\\n` for
`x`. Both are sent over HTTP with the newline really on the wire:

- the key via HTTP Basic auth: base64 carries the newline (httpx refuses a raw newline in an
  `Authorization: Bearer` header, and the emulator trims a bearer value anyway);
- the path percent-encoded (`%0A`), which the server decodes into the ASGI path.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from billwarden_emulator.routing import build_router

NEWLINES = pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
ENCODED = pytest.mark.parametrize("newline", ["%0A", "%0D%0A"], ids=["lf", "crlf"])


def _stripe_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"]
    return error


class TestApiKeyWithTrailingNewline:
    @NEWLINES
    @pytest.mark.parametrize("prefix", ["sk_test_", "rk_live_"])
    def test_is_refused_with_401(
        self, emulator_url: str, api_key: str, prefix: str, newline: str
    ) -> None:
        key = prefix + api_key.removeprefix("sk_test_")
        well_formed = httpx.get(f"{emulator_url}/v1/customers", auth=(key, ""))
        assert well_formed.status_code == 200, well_formed.text

        response = httpx.get(f"{emulator_url}/v1/customers", auth=(key + newline, ""))
        assert response.request.headers["authorization"].startswith("Basic ")
        error = _stripe_error(response, 401)
        assert str(error["message"]).startswith("Invalid API Key provided: ")


@pytest.fixture
def raw_client(emulator_url: str, api_key: str) -> Iterator[httpx.Client]:
    """Plain httpx: it sends a percent-encoded path as it is given."""
    with httpx.Client(
        base_url=emulator_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    ) as http:
        yield http


class TestPathWithTrailingNewline:
    @ENCODED
    def test_a_listing_path_is_an_unrecognized_url(
        self, raw_client: httpx.Client, newline: str
    ) -> None:
        response = raw_client.get(f"/v1/customers{newline}")
        assert response.request.url.raw_path.endswith(newline.encode())
        error = _stripe_error(response, 404)
        assert str(error["message"]).startswith("Unrecognized request URL (GET: /v1/customers")

    @ENCODED
    def test_an_id_with_a_newline_is_no_such_object(
        self, raw_client: httpx.Client, newline: str
    ) -> None:
        customer = raw_client.post("/v1/customers").json()["id"]
        assert raw_client.get(f"/v1/customers/{customer}").status_code == 200
        response = raw_client.get(f"/v1/customers/{customer}{newline}")
        error = _stripe_error(response, 404)
        assert error["code"] == "resource_missing"

    @ENCODED
    def test_an_action_path_is_an_unrecognized_url_and_does_nothing(
        self, raw_client: httpx.Client, newline: str
    ) -> None:
        created = raw_client.post("/v1/test_helpers/test_clocks", data={"frozen_time": 1_000_000})
        assert created.status_code == 200, created.text
        clock = created.json()["id"]
        response = raw_client.post(
            f"/v1/test_helpers/test_clocks/{clock}/advance{newline}",
            data={"frozen_time": 2_000_000},
        )
        error = _stripe_error(response, 404)
        assert str(error["message"]).startswith("Unrecognized request URL (POST: ")
        after = raw_client.get(f"/v1/test_helpers/test_clocks/{clock}").json()
        assert after["frozen_time"] == 1_000_000


class TestRouterMatchesWholePaths:
    @NEWLINES
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/customers"),
            ("POST", "/v1/test_helpers/test_clocks/clock_1/advance"),
            ("GET", "/v1/invoices/in_1/lines"),
            ("POST", "/v1/invoices/in_1/pay"),
        ],
    )
    def test_a_trailing_newline_matches_no_route(
        self, method: str, path: str, newline: str
    ) -> None:
        router = build_router()
        assert router.match(method, path) is not None
        assert router.match(method, path + newline) is None
