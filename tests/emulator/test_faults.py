"""Fault knobs set through `POST /_emulator/faults`: validation, counters, matching, state."""

from __future__ import annotations

import re
from typing import Any

import pytest

from billwarden_emulator.faults import AccountFaults, FaultError


class TestValidation:
    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ([], "fault spec must be a JSON object"),
            ({"request": []}, "unknown fault section(s) 'request'"),
            ({"requests": {}}, "requests must be a list of rules"),
            ({"requests": ["POST /v1/customers"]}, "requests[0] must be an object"),
            ({"requests": [{"status": 500}]}, "requests[0].path is required"),
            ({"requests": [{"path": "v1/customers", "status": 500}]}, "starting with '/'"),
            ({"requests": [{"path": 5, "status": 500}]}, "requests[0].path must be a string"),
            ({"requests": [{"path": "/v1/*/x", "status": 500}]}, "'*' as its last character"),
            ({"requests": [{"path": "/v1/customers?limit=1", "status": 500}]}, "no query string"),
            ({"requests": [{"path": "/v1/customers"}]}, "requests[0].status is required"),
            ({"requests": [{"path": "/v1/customers", "status": 503}]}, "must be 500 or 429"),
            ({"requests": [{"path": "/v1/customers", "status": "500"}]}, "must be 500 or 429"),
            ({"requests": [{"path": "/v1/customers", "status": True}]}, "must be 500 or 429"),
            (
                {"requests": [{"path": "/v1/customers", "status": 500, "count": 0}]},
                "requests[0].count must be an integer >= 1, got 0",
            ),
            (
                {"requests": [{"path": "/v1/customers", "status": 500, "count": 1.5}]},
                "requests[0].count must be an integer >= 1",
            ),
            (
                {"requests": [{"path": "/v1/customers", "status": 429, "count": True}]},
                "requests[0].count must be an integer >= 1",
            ),
            (
                {"requests": [{"method": "FETCH", "path": "/v1/customers", "status": 500}]},
                "requests[0].method must be one of",
            ),
            (
                {"requests": [{"path": "/v1/customers", "status": 500, "times": 2}]},
                "requests[0]: unknown field(s) 'times'",
            ),
            (
                {
                    "requests": [
                        {"path": "/v1/customers", "status": 500},
                        {"path": "/v1/prices", "status": 404},
                    ]
                },
                "requests[1].status must be 500 or 429, got 404",
            ),
            ({"latency": [{"path": "/v1/customers"}]}, "latency[0].seconds is required"),
            (
                {"latency": [{"path": "/v1/customers", "seconds": -0.1}]},
                "latency[0].seconds must be >= 0",
            ),
            (
                {"latency": [{"path": "/v1/customers", "seconds": "1"}]},
                "latency[0].seconds must be a number of seconds",
            ),
            (
                {"latency": [{"path": "/v1/customers", "seconds": float("inf")}]},
                "latency[0].seconds must be a number of seconds",
            ),
            ({"webhooks": [True]}, "webhooks must be an object"),
            ({"webhooks": {"duplicate": "yes"}}, "webhooks.duplicate must be true or false"),
            ({"webhooks": {"delay": -1}}, "webhooks.delay must be >= 0"),
            ({"webhooks": {"shuffle_window": None}}, "webhooks.shuffle_window must be a number"),
            ({"webhooks": {"shuffle_seed": 1.5}}, "webhooks.shuffle_seed must be an integer"),
            ({"webhooks": {"reorder": True}}, "webhooks: unknown field(s) 'reorder'"),
        ],
    )
    def test_bad_spec_is_refused_with_the_offending_field(self, spec: Any, message: str) -> None:
        faults = AccountFaults()
        with pytest.raises(FaultError) as raised:
            faults.configure(spec)
        assert message in str(raised.value)

    def test_fault_error_is_a_value_error(self) -> None:
        assert issubclass(FaultError, ValueError)

    def test_invalid_spec_changes_nothing(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/customers", "status": 500, "count": 3}]})
        before = faults.state()
        with pytest.raises(FaultError):
            faults.configure(
                {
                    "requests": [{"path": "/v1/prices", "status": 429}],
                    "webhooks": {"delay": -5},
                }
            )
        assert faults.state() == before


class TestRequestFaults:
    def test_off_by_default(self) -> None:
        faults = AccountFaults()
        assert faults.take_request_fault("POST", "/v1/customers") is None
        assert faults.latency_for("GET", "/v1/customers") == 0.0
        assert faults.state() == {
            "requests": [],
            "latency": [],
            "webhooks": {
                "duplicate": False,
                "duplicate_rate": 0.0,
                "shuffle_window": 0.0,
                "shuffle_seed": None,
                "delay": 0.0,
            },
            "injected": {},
            "checked": 1,
        }

    def test_fails_the_next_n_requests_then_passes(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/customers", "status": 500, "count": 2}]})
        outcomes = [faults.take_request_fault("POST", "/v1/customers") for _ in range(3)]
        assert outcomes == [500, 500, None]

    def test_count_defaults_to_one(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/customers", "status": 429}]})
        assert faults.take_request_fault("GET", "/v1/customers") == 429
        assert faults.take_request_fault("GET", "/v1/customers") is None

    def test_method_limits_the_rule(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"method": "post", "path": "/v1/customers", "status": 500}]})
        assert faults.take_request_fault("GET", "/v1/customers") is None
        assert faults.take_request_fault("post", "/v1/customers") == 500
        assert faults.state()["requests"] == []

    def test_exact_path_does_not_match_sub_paths(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/customers", "status": 500}]})
        assert faults.take_request_fault("GET", "/v1/customers/cus_123") is None
        assert faults.take_request_fault("GET", "/v1/customers?limit=3") == 500

    def test_prefix_pattern_matches_sub_paths(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/subscriptions*", "status": 429, "count": 3}]})
        assert faults.take_request_fault("GET", "/v1/customers") is None
        assert faults.take_request_fault("GET", "/v1/subscriptions") == 429
        assert faults.take_request_fault("POST", "/v1/subscriptions/sub_1") == 429
        assert faults.take_request_fault("POST", "/v1/subscriptions/sub_1/resume") == 429
        assert faults.take_request_fault("GET", "/v1/subscriptions") is None

    def test_rules_are_consumed_in_order(self) -> None:
        faults = AccountFaults()
        faults.configure(
            {
                "requests": [
                    {"path": "/v1/customers", "status": 429, "count": 1},
                    {"path": "/v1/*", "status": 500, "count": 2},
                ]
            }
        )
        statuses = [faults.take_request_fault("GET", "/v1/customers") for _ in range(4)]
        assert statuses == [429, 500, 500, None]

    def test_state_reports_remaining_counts_and_round_trips(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/customers", "status": 500, "count": 3}]})
        faults.take_request_fault("POST", "/v1/customers")
        state = faults.state()
        assert state["requests"] == [
            {"method": None, "path": "/v1/customers", "status": 500, "count": 2}
        ]
        assert state["injected"] == {"500": 1}
        restored = AccountFaults()
        restored.configure(state)
        # counts stay with the account
        assert restored.state() == {**state, "injected": {}, "checked": 0}


class TestLatency:
    def test_latency_for_matching_routes_only(self) -> None:
        faults = AccountFaults()
        faults.configure(
            {
                "latency": [
                    {"method": "GET", "path": "/v1/subscriptions*", "seconds": 0.2},
                    {"path": "/v1/*", "seconds": 0.05},
                ]
            }
        )
        assert faults.latency_for("GET", "/v1/subscriptions/sub_1") == 0.2
        assert faults.latency_for("POST", "/v1/subscriptions") == 0.05
        assert faults.latency_for("GET", "/v1/customers") == 0.05
        assert faults.latency_for("GET", "/_emulator/faults") == 0.0

    def test_latency_is_not_consumed(self) -> None:
        faults = AccountFaults()
        faults.configure({"latency": [{"path": "/v1/balance", "seconds": 1}]})
        assert [faults.latency_for("GET", "/v1/balance") for _ in range(3)] == [1.0, 1.0, 1.0]


class TestRateFaults:
    def test_a_rate_rule_fails_about_that_share_and_is_never_used_up(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/*", "status": 429, "rate": 0.2}]})
        outcomes = [faults.take_request_fault("GET", "/v1/customers") for _ in range(2000)]
        failed = outcomes.count(429)
        assert 300 < failed < 500  # 400 expected; far outside chance otherwise
        assert outcomes.count(None) == 2000 - failed
        assert faults.state()["requests"] == [
            {"method": None, "path": "/v1/*", "status": 429, "rate": 0.2}
        ]
        assert faults.state()["injected"] == {"429": failed}
        assert faults.state()["checked"] == 2000

    def test_a_request_a_rate_rule_spares_goes_on_to_the_next_rule(self) -> None:
        faults = AccountFaults()
        faults.configure(
            {
                "requests": [
                    {"path": "/v1/*", "status": 500, "rate": 0.5},
                    {"path": "/v1/*", "status": 429, "rate": 1},
                ]
            }
        )
        outcomes = {faults.take_request_fault("POST", "/v1/prices") for _ in range(200)}
        assert outcomes == {500, 429}

    def test_injected_counts_survive_a_new_spec_and_go_with_reset(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/customers", "status": 500, "count": 2}]})
        faults.take_request_fault("POST", "/v1/customers")
        state = faults.state()
        faults.configure(state)  # read-only `injected` is accepted back
        assert faults.state()["injected"] == {"500": 1}
        faults.reset()
        assert faults.state()["injected"] == {}

    @pytest.mark.parametrize(
        ("rule", "message"),
        [
            ({"rate": 0}, "rate must be a fraction in (0, 1]"),
            ({"rate": 1.5}, "rate must be a fraction in (0, 1]"),
            ({"rate": True}, "rate must be a fraction in (0, 1]"),
            ({"rate": 0.1, "count": 2}, "give count or rate, not both"),
        ],
    )
    def test_bad_rates_are_refused(self, rule: dict[str, Any], message: str) -> None:
        with pytest.raises(FaultError, match=re.escape(message)):
            AccountFaults().configure({"requests": [{"path": "/v1/*", "status": 500, **rule}]})

    def test_duplicate_rate_sends_about_that_share_twice(self) -> None:
        faults = AccountFaults()
        faults.configure({"webhooks": {"duplicate_rate": 0.3, "shuffle_seed": 5}})
        draws = [faults.duplicates_delivery() for _ in range(2000)]
        assert 500 < draws.count(True) < 700  # 600 expected
        assert faults.state()["webhooks"]["duplicate_rate"] == 0.3
        with pytest.raises(FaultError, match="duplicate_rate must be a fraction"):
            faults.configure({"webhooks": {"duplicate_rate": 2}})


class TestWebhookKnobs:
    def test_knobs_are_read_back(self) -> None:
        faults = AccountFaults()
        faults.configure(
            {"webhooks": {"duplicate": True, "shuffle_window": 2, "shuffle_seed": 7, "delay": 1.5}}
        )
        assert faults.duplicate_deliveries is True
        assert faults.shuffle_window == 2.0
        assert faults.delivery_delay == 1.5
        assert faults.state()["webhooks"] == {
            "duplicate": True,
            "duplicate_rate": 0.0,
            "shuffle_window": 2.0,
            "shuffle_seed": 7,
            "delay": 1.5,
        }

    def test_seed_makes_the_shuffle_repeatable(self) -> None:
        first, second = AccountFaults(), AccountFaults()
        for faults in (first, second):
            faults.configure({"webhooks": {"shuffle_window": 1, "shuffle_seed": 42}})
        orders = []
        for faults in (first, second):
            items = list(range(20))
            faults.shuffle_random.shuffle(items)
            orders.append(items)
        assert orders[0] == orders[1] != list(range(20))

    def test_fields_left_out_of_webhooks_are_off(self) -> None:
        faults = AccountFaults()
        faults.configure({"webhooks": {"duplicate": True, "delay": 3}})
        faults.configure({"webhooks": {"delay": 1}})
        assert faults.duplicate_deliveries is False
        assert faults.delivery_delay == 1.0


class TestSectionsAndReset:
    def test_sections_left_out_keep_their_value(self) -> None:
        faults = AccountFaults()
        faults.configure({"webhooks": {"duplicate": True}})
        faults.configure({"requests": [{"path": "/v1/customers", "status": 500}]})
        assert faults.duplicate_deliveries is True
        assert faults.take_request_fault("POST", "/v1/customers") == 500

    def test_sending_a_section_replaces_it(self) -> None:
        faults = AccountFaults()
        faults.configure({"requests": [{"path": "/v1/customers", "status": 500, "count": 5}]})
        faults.configure({"requests": [{"path": "/v1/prices", "status": 429}]})
        assert faults.take_request_fault("POST", "/v1/customers") is None
        assert faults.take_request_fault("POST", "/v1/prices") == 429
        faults.configure({"requests": []})
        assert faults.state()["requests"] == []

    def test_reset_turns_everything_off(self) -> None:
        faults = AccountFaults()
        faults.configure(
            {
                "requests": [{"path": "/v1/customers", "status": 500, "count": 5}],
                "latency": [{"path": "/v1/*", "seconds": 0.3}],
                "webhooks": {"duplicate": True, "shuffle_window": 1, "delay": 2},
            }
        )
        faults.reset()
        assert faults.take_request_fault("POST", "/v1/customers") is None
        assert faults.latency_for("GET", "/v1/customers") == 0.0
        assert faults.duplicate_deliveries is False
        assert faults.shuffle_window == 0.0
        assert faults.delivery_delay == 0.0
        assert faults.state() == {**AccountFaults().state(), "checked": 1}

    def test_accounts_do_not_share_faults(self) -> None:
        first, second = AccountFaults(), AccountFaults()
        first.configure({"requests": [{"path": "/v1/customers", "status": 500}]})
        assert second.take_request_fault("POST", "/v1/customers") is None
        assert first.take_request_fault("POST", "/v1/customers") == 500
