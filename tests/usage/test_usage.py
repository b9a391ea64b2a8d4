"""Usage events counted once, per UTC day and month; a bad event refused alone; the day's usage
and quotas (seed 004's shape) and series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.checkout.factories import Shop

EVENTS = "/api/v1/usage/events"


def event(event_id: str, subject: str = "ada", **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "subjectId": subject, "metric": "api_calls", **fields}


async def send(client: httpx.AsyncClient, headers: dict[str, str], *events: Any) -> dict[str, Any]:
    answer = await client.post(EVENTS, json={"events": list(events)}, headers=headers)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


class TestIngest:
    async def test_each_id_once_and_bad_events_alone(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        now = datetime.now(UTC)
        result = await send(
            client,
            shop.key,
            event("e1"),
            event("e2", value=5),
            event("e1"),  # twice in one batch
            event("e3", metric="spaceships"),
            event("e4", value=-1),
            event("e5", timestamp=(now - timedelta(days=36)).isoformat()),
            event("e6", timestamp=(now + timedelta(minutes=10)).isoformat()),
            {"subjectId": "ada", "metric": "api_calls"},  # no id
            event("e7", metric="tokens_issued", value=2.5, properties={"model": "small"}),
        )
        assert (result["accepted"], result["duplicates"]) == (3, 1)
        assert [(e["index"], e["code"]) for e in result["errors"]] == [
            (3, "UNKNOWN_METRIC"),
            (4, "VALIDATION_ERROR"),
            (5, "TIMESTAMP_OUT_OF_RANGE"),
            (6, "TIMESTAMP_OUT_OF_RANGE"),
            (7, "VALIDATION_ERROR"),
        ]
        again = await send(client, shop.key, event("e1"), event("e2", value=5), event("e8"))
        assert (again["accepted"], again["duplicates"], again["errors"]) == (1, 2, [])
        series = await client.get(
            "/api/v1/usage/user/ada", params={"metric": "api_calls"}, headers=shop.key
        )
        assert series.status_code == 200, series.text
        today = now.date().isoformat()
        (point,) = [p for p in series.json()["series"]["api_calls"] if p["period"] == today]
        assert point["value"] == 7  # e1 (1) + e2 (5) + e8 (1), each once

    async def test_a_late_event_lands_in_its_own_day(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        before = midnight - timedelta(milliseconds=1)  # 23:59:59.999 the day before
        sent = await send(
            client,
            shop.key,
            event("late", timestamp=before.isoformat().replace("+00:00", "Z")),
            event("first", timestamp=midnight.isoformat()),
            event("month-old", timestamp=(midnight - timedelta(days=33)).timestamp()),
        )
        assert (sent["accepted"], sent["errors"]) == (3, [])
        series = (
            await client.get(
                "/api/v1/usage/user/ada",
                params={
                    "metric": "api_calls",
                    "from": (midnight - timedelta(days=1)).date().isoformat(),
                    "to": midnight.date().isoformat(),
                },
                headers=shop.key,
            )
        ).json()
        assert [p["value"] for p in series["series"]["api_calls"]] == [1, 1]
        months = (
            await client.get(
                "/api/v1/usage/user/ada",
                params={
                    "granularity": "month",
                    "from": (midnight - timedelta(days=40)).date().isoformat(),
                },
                headers=shop.key,
            )
        ).json()
        assert sum(p["value"] for p in months["series"]["api_calls"]) == 3
        assert set(months["series"]) == {"api_calls", "tokens_issued"}

    async def test_malformed_batches_are_400(self, client: httpx.AsyncClient, shop: Shop) -> None:
        for body in ({}, {"events": []}, {"events": "e1"}, {"events": [event("x")] * 1001}):
            answer = await client.post(EVENTS, json=body, headers=shop.key)
            assert answer.status_code == 400, body
            assert answer.json()["code"] == "VALIDATION_ERROR"
        not_json = await client.post(
            EVENTS, content=b"{", headers={**shop.key, "Content-Type": "application/json"}
        )
        assert not_json.status_code == 400


class TestEndUsers:
    async def test_own_usage_with_quotas_in_seed_004_shape(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        token = shop.token("bob")
        result = await send(
            client,
            token,
            {"id": "b1", "metric": "api_calls", "value": 30},
            {"id": "b2", "metric": "tokens_issued", "value": 4},
            {"id": "b3", "subjectId": "ada", "metric": "api_calls"},
        )
        assert result["accepted"] == 2
        assert [(e["index"], e["code"]) for e in result["errors"]] == [(2, "SUBJECT_MISMATCH")]
        day = await client.get("/api/v1/billing/usage", headers=token)
        assert day.status_code == 200, day.text
        body = day.json()
        assert body["userId"] == "bob"
        assert body["date"] == datetime.now(UTC).date().isoformat()
        assert (body["apiCalls"], body["tokensIssued"]) == (30, 4)
        # whole quantities are JSON integers, as seed 004's counters are
        assert isinstance(body["apiCalls"], int) and isinstance(
            body["quotas"]["api_calls"]["used"], int
        )
        assert body["metrics"] == {"api_calls": 30, "tokens_issued": 4}
        quota = body["quotas"]["api_calls"]  # the free tier: 100 a day
        assert (quota["limit"], quota["used"], quota["remaining"], quota["period"]) == (
            100,
            30,
            70,
            "day",
        )
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        assert quota["resetsAt"].startswith(tomorrow.isoformat())
        org = await client.get(
            "/api/v1/billing/usage",
            params={"date": (datetime.now(UTC).date() - timedelta(days=1)).isoformat()},
            headers=shop.token("carol", organization_id="acme"),
        )
        assert org.json()["organizationId"] == "acme"
        assert org.json()["apiCalls"] == 0

    async def test_a_day_written_as_a_number_is_400_not_1970(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        for day in ("0", "0.0", "86400"):
            answer = await client.get(
                "/api/v1/billing/usage", params={"date": day}, headers=shop.token("bob")
            )
            assert answer.status_code == 400, day
            assert answer.json()["code"] == "VALIDATION_ERROR"
            assert answer.json()["details"]["fields"][0]["field"] == "date"


class TestSeriesRefusals:
    async def test_windows_at_the_ends_of_the_calendar_are_answered(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        first = await client.get(
            "/api/v1/usage/user/ada",
            params={"to": "0001-01-05", "metric": "api_calls"},
            headers=shop.key,
        )
        assert first.status_code == 200, first.text
        periods = [point["period"] for point in first.json()["series"]["api_calls"]]
        assert periods == [f"0001-01-0{n}" for n in range(1, 6)]
        last = await client.get(
            "/api/v1/usage/user/ada",
            params={"from": "9999-11-15", "to": "9999-12-31", "granularity": "month"},
            headers=shop.key,
        )
        assert last.status_code == 200, last.text
        periods = [point["period"] for point in last.json()["series"]["api_calls"]]
        assert periods == ["9999-11-01", "9999-12-01"]

    async def test_unknown_metric_and_backwards_window(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        unknown = await client.get(
            "/api/v1/usage/user/ada", params={"metric": "spaceships"}, headers=shop.key
        )
        assert unknown.status_code == 400
        assert unknown.json()["code"] == "UNKNOWN_METRIC"
        backwards = await client.get(
            "/api/v1/usage/user/ada",
            params={"from": "2026-11-20", "to": "2026-11-10"},
            headers=shop.key,
        )
        assert backwards.status_code == 400
        assert backwards.json()["code"] == "VALIDATION_ERROR"

    async def test_a_day_written_as_a_number_is_400(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        for params in ({"from": "0"}, {"to": "86400"}):
            answer = await client.get("/api/v1/usage/user/ada", params=params, headers=shop.key)
            assert answer.status_code == 400, params
            assert answer.json()["code"] == "VALIDATION_ERROR"
