"""The Stripe CLI's billing `stripe trigger` fixtures (`../shared/stripe/cli-triggers/`), run
against the emulator the way the CLI runs them (tests/emulator/cli_triggers.py): each must go
through and make the emulator emit the event it is named after.

`NOT_YET` lists the fixtures that fail today with the reason; each is expected to fail, strictly, so
a fixture that starts passing must leave the list.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.cli_triggers import (
    Answers,
    Fixture,
    TriggerRunner,
    UndeclaredStep,
    find_cli_triggers,
    form_pairs,
)

_ROUTE = "route missing (404 Unrecognized request URL)"

NOT_YET: dict[str, str] = {
    # Stripe's docs send subscription_schedule.expiring 7 days before the end; the fixture advances
    # its clock to 9 days before, where the emulator (following the docs) has not sent it yet
    "subscription_schedule.expiring": (
        "event never emitted: the clock stops 9 days before the schedule ends; the emulator sends "
        "expiring 7 days before, as Stripe documents it"
    ),
    # POST /v1/payment_methods/{id}/attach (the pm_card_* test tokens)
}

# how long to look for the event after the last step: the emulator emits during the request, so
# a passing fixture finds it at once; an expected failure should not hold the run up
EVENT_WAIT = 2.0
EVENT_WAIT_NOT_YET = 0.2


def _fixture_files() -> tuple[list[Path], str | None]:
    try:
        folder = find_cli_triggers()
    except FileNotFoundError as missing:
        return [], str(missing)
    return sorted(folder.glob("*.json")), None


FILES, MISSING = _fixture_files()


def _cases() -> list[Any]:
    if MISSING is not None:
        return [pytest.param(None, id="cli-triggers-folder")]
    return [
        pytest.param(
            path,
            id=path.stem,
            marks=[pytest.mark.xfail(strict=True, reason=NOT_YET[path.stem])]
            if path.stem in NOT_YET
            else [],
        )
        for path in FILES
    ]


@pytest.fixture(scope="module")
def runner(emulator_url: str) -> Iterator[TriggerRunner]:
    with httpx.Client(base_url=emulator_url, timeout=10) as http:
        yield TriggerRunner(http)


class TestEveryCliTriggerEmitsItsEvent:
    @pytest.mark.parametrize("path", _cases())
    def test_fixture_runs_and_emits_its_event(
        self, runner: TriggerRunner, path: Path | None
    ) -> None:
        if path is None:
            # like the shape contract: the fixtures live beside the project; missing is a failure
            pytest.fail(str(MISSING), pytrace=False)
        fixture = Fixture.load(path)
        wait = EVENT_WAIT_NOT_YET if fixture.event_type in NOT_YET else EVENT_WAIT

        outcome = runner.run(fixture, event_wait=wait)

        assert outcome.passed, outcome.reason

    def test_not_yet_names_only_fixtures_that_exist(self) -> None:
        if MISSING is not None:
            pytest.fail(MISSING, pytrace=False)
        assert sorted(set(NOT_YET) - {path.stem for path in FILES}) == []


class TestRequestsAreEncodedLikeTheCli:
    def test_nested_maps_lists_and_scalars(self) -> None:
        params = {
            "items": [{"price": "price_1", "price_data": {"recurring": {"interval": "month"}}}],
            "payment_method_types": ["card", "sepa_debit"],
            "recurring[interval]": "month",
            "confirm": True,
            "amount": 2000,
            "skipped": None,
        }

        assert form_pairs(params, Answers()) == [
            ("items[0][price]", "price_1"),
            ("items[0][price_data][recurring][interval]", "month"),
            ("payment_method_types[]", "card"),
            ("payment_method_types[]", "sepa_debit"),
            ("recurring[interval]", "month"),
            ("confirm", "true"),
            ("amount", "2000"),
        ]

    def test_references_reach_into_earlier_answers(self) -> None:
        answers = Answers({"sub": {"id": "sub_1", "items": {"data": [{"id": "si_1"}]}}})

        assert answers.resolve("${sub:items.data.0.id}") == "si_1"
        assert answers.resolve("/v1/subscriptions/${sub:id}/x") == "/v1/subscriptions/sub_1/x"
        assert answers.resolve("${sub:currency|usd}") == "usd"
        assert answers.resolve("${sub:currency}") == "${sub:currency}"
        with pytest.raises(UndeclaredStep):
            answers.resolve("${customer:id}")
