"""The catalog document: the sample parses, and a bad document names every problem by key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from billwarden.catalog.exceptions import InvalidCatalog
from billwarden.catalog.service import read_catalog_file
from billwarden.catalog.service.document import (
    CatalogDocument,
    CheckoutDefaults,
    EntitlementLabel,
    Family,
    FreeTier,
    InvalidDocument,
    Plan,
    QuotaPeriod,
    parse_document,
    parse_toml,
)
from billwarden.core.modes import Mode

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "examples" / "catalog.toml"


def minimal(**plans: dict[str, Any]) -> dict[str, Any]:
    return {
        "families": {"membership": {"primary": True, "cancellable": True}, "api": {}},
        "plans": plans or {"premium_monthly": {"family": "membership", "prices": {}}},
    }


def errors_of(raw: object) -> list[str]:
    with pytest.raises(InvalidDocument) as refused:
        parse_document(raw)
    return [str(error) for error in refused.value.errors]


class TestSample:
    def test_the_sample_catalog_parses_with_its_plans_and_families(self) -> None:
        catalog = parse_toml(SAMPLE.read_text())
        assert sorted(catalog.plans) == [
            "api_pro",
            "enterprise",
            "premium_monthly",
            "premium_yearly",
        ]
        assert catalog.primary_family == "membership"
        monthly = catalog.plans["premium_monthly"]
        assert monthly.entitlement is EntitlementLabel.PREMIUM_MONTHLY
        assert monthly.features == ["premium", "export"]
        assert monthly.quotas["api_calls"].period is QuotaPeriod.DAY
        assert catalog.checkout.default_purchase_key == "premium_monthly"
        assert catalog.plans["enterprise"].self_serve is False
        assert catalog.lookup_keys(Mode.LIVE) == ["premium_monthly", "premium_yearly", "api_pro"]

    def test_json_and_toml_forms_are_the_same_catalog(self) -> None:
        from_toml = parse_toml(SAMPLE.read_text())
        assert parse_document(from_toml.as_json()) == from_toml

    def test_defaults_fill_what_a_plan_leaves_out(self) -> None:
        catalog = parse_document(minimal())
        plan = catalog.plans["premium_monthly"]
        assert plan.self_serve is True
        assert plan.entitlement is EntitlementLabel.CUSTOM
        assert plan.recurring is True
        assert catalog.free.features == [] and catalog.free.quotas == {}


class TestRefusals:
    def test_unknown_family_names_the_key_path(self) -> None:
        raw = minimal(premium_monthly={"family": "memb"})
        assert errors_of(raw) == ["plans.premium_monthly.family: unknown family 'memb'"]

    def test_every_problem_is_reported_at_once(self) -> None:
        raw = minimal(
            a={"family": "nope", "prices": {"test": "prod_123"}},
            b={"family": "api", "entitlement": "GOLD", "quotas": {"x": {"limit": -1}}},
        )
        raw["checkout"] = {"default_purchase_key": "missing"}
        errors = errors_of(raw)
        # schema errors come first (the document is checked whole before references)
        assert any(error.startswith("plans.b.entitlement:") for error in errors)
        assert any(error.startswith("plans.b.quotas.x.limit:") for error in errors)
        assert "plans.b.quotas.x.period: required" in errors

    def test_reference_errors_are_all_named(self) -> None:
        raw = minimal(
            a={"family": "nope", "prices": {"test": "prod_123"}},
            b={"family": "api", "prices": {"test": "lookup:bad key"}},
        )
        raw["checkout"] = {"default_purchase_key": "missing"}
        errors = errors_of(raw)
        assert "plans.a.family: unknown family 'nope'" in errors
        assert any(
            error.startswith("plans.a.prices.test: a price is a Stripe price id")
            for error in errors
        )
        assert any(error.startswith("plans.b.prices.test: a lookup key") for error in errors)
        assert "checkout.default_purchase_key: unknown purchase key 'missing'" in errors

    def test_one_price_cannot_be_two_plans(self) -> None:
        raw = minimal(
            a={"family": "membership", "prices": {"test": "price_1"}},
            b={"family": "api", "prices": {"test": "price_1"}},
        )
        assert errors_of(raw) == [
            "plans.b.prices.test: the price 'price_1' is already the price of plan 'a'"
        ]

    def test_two_primary_families_are_refused(self) -> None:
        raw = minimal()
        raw["families"]["api"] = {"primary": True}
        assert errors_of(raw) == [
            "families: only one family may be primary, not ['membership', 'api']"
        ]

    def test_unknown_keys_are_refused_not_ignored(self) -> None:
        raw = minimal(premium_monthly={"family": "membership", "featurez": ["x"]})
        assert errors_of(raw) == ["plans.premium_monthly.featurez: unknown key"]

    @pytest.mark.parametrize(
        ("plan", "expected"),
        [
            ({"amount": 900}, "plans.p: amount and currency go together"),
            ({"currency": "usd"}, "plans.p: amount and currency go together"),
            (
                {"amount": 9, "currency": "USD"},
                "plans.p.currency: a currency is three lowercase letters",
            ),
            ({"interval": "month"}, "plans.p.interval: an interval needs an amount and currency"),
        ],
    )
    def test_price_definitions_are_complete(self, plan: dict[str, Any], expected: str) -> None:
        assert expected in errors_of(minimal(p={"family": "membership", **plan}))

    def test_a_trailing_newline_is_not_a_valid_purchase_key_or_price(self) -> None:
        raw = minimal(**{"monthly\n": {"family": "membership", "prices": {"test": "price_1\n"}}})
        errors = errors_of(raw)
        assert any(error.startswith("plans.monthly\n: a purchase key") for error in errors)
        assert any(error.startswith("plans.monthly\n.prices.test: a price") for error in errors)

    def test_not_a_table_and_not_toml_are_refused(self) -> None:
        assert errors_of(["plans"]) == ["a catalog is a table (a JSON object)"]
        with pytest.raises(InvalidDocument) as refused:
            parse_toml("[plans.x\nfamily = ")
        assert str(refused.value).startswith("not valid TOML")

    def test_a_one_time_plan_is_not_recurring(self) -> None:
        catalog = parse_document(
            minimal(p={"family": "api", "amount": 500, "currency": "eur", "prices": {}})
        )
        assert catalog.plans["p"].recurring is False
        assert isinstance(catalog, CatalogDocument)


class TestDocsHoldToTheCode:
    def test_every_key_of_the_document_is_in_docs_catalog(self) -> None:
        doc = (ROOT / "docs" / "catalog.md").read_text()
        keys = [f"checkout.{name}" for name in CheckoutDefaults.model_fields]
        keys += [f"families.<name>.{name}" for name in Family.model_fields]
        keys += [f"free.{name}" for name in FreeTier.model_fields]
        keys += [f"plans.<key>.{name}" for name in Plan.model_fields]
        missing = [key for key in keys if f"`{key}`" not in doc and key not in doc]
        assert not missing, f"keys missing from docs/catalog.md: {missing}"

    def test_the_docs_example_parses(self) -> None:
        doc = (ROOT / "docs" / "catalog.md").read_text()
        example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
        catalog = parse_toml(example)
        assert catalog.plans["premium_monthly"].prices[Mode.LIVE] == "lookup:premium_monthly"

    def test_every_entitlement_label_and_quota_period_is_named(self) -> None:
        doc = (ROOT / "docs" / "catalog.md").read_text()
        for value in [*EntitlementLabel, *QuotaPeriod]:
            assert f"`{value.value}`" in doc or f'"{value.value}"' in doc, value


class TestNamesAndPrices:
    def test_feature_and_role_names_are_checked_in_full(self) -> None:
        raw = minimal(
            p={"family": "membership", "features": ["premium\n", "a b", "x", "x"], "role": "r\n"}
        )
        errors = errors_of(raw)
        assert "plans.p.features.0: a feature name is letters, digits, _ . -" in errors
        assert "plans.p.features.1: a feature name is letters, digits, _ . -" in errors
        assert "plans.p.features: a feature is named twice" in errors
        assert "plans.p.role: a role is letters, digits, _ . -" in errors

    def test_one_price_id_cannot_serve_both_modes(self) -> None:
        raw = minimal(p={"family": "membership", "prices": {"test": "price_1", "live": "price_1"}})
        assert errors_of(raw) == [
            "plans: the price 'price_1' cannot be both a test and a live price"
        ]

    def test_a_file_that_is_not_utf8_is_refused_as_a_catalog_error(self, tmp_path: Path) -> None:
        bad = tmp_path / "catalog.toml"
        bad.write_bytes(b"[families.\xff]\n")
        with pytest.raises(InvalidCatalog, match="not UTF-8"):
            read_catalog_file(bad)
