"""The log scanner the chaos and fuzz runs rely on finds real secrets and passes masked ones."""

from __future__ import annotations

from pathlib import Path

from tests.secret_scan import scan_files, scan_text

STRIPE_KEY = "sk_test_" + "51Habcdefghijklmnopqrstu"
SIGNING_SECRET = "whsec_" + "c2VjcmV0c2VjcmV0c2VjcmV0"
API_KEY = "bw_live_" + "Zx9_kq2LmN4pQr7sT1uVwXy"
INVITATION = "bwi_" + "q3Vx8kLmN2pQr7sT1uVwXyZ0"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ." + "s1gnatureS1gnatureS1gnat"


def test_each_secret_shape_is_found_and_not_echoed_whole() -> None:
    text = "\n".join(
        [
            f"calling stripe with {STRIPE_KEY}",
            f"secret={SIGNING_SECRET}",
            f"Authorization: Bearer {API_KEY}",
            f"cookie bw_session={TOKEN}",
            f"GET /admin/invitations?token={INVITATION}",
        ]
    )
    findings = scan_text(text, source="app.log")
    assert [(f.line_number, f.kind) for f in findings] == [
        (1, "stripe secret key"),
        (2, "webhook signing secret"),
        (3, "billwarden api key"),
        (4, "signed token"),
        (5, "invitation token"),
    ]
    for finding in findings:
        assert STRIPE_KEY not in str(finding) and API_KEY not in str(finding)
        assert str(finding).startswith("app.log:")


def test_masked_forms_and_prose_are_not_secrets() -> None:
    text = (
        "secret: sk_test_...wxyz, whsec_...abcd, key bw_live_ab12…\n"
        "send a project API key (bw_test_... or bw_live_...) as Authorization: Bearer\n"
        "event evt_1Nabcdefghijklmnopqrstuv applied to sub_1Nabcdefghijklmnopq"
    )
    assert scan_text(text) == []


def test_known_values_without_a_shape_are_found(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("login ok\nuser signed in with correct-horse-battery\n", encoding="utf-8")
    findings = scan_files([log], known=["correct-horse-battery", "short"])
    assert [(f.line_number, f.kind) for f in findings] == [(2, "known secret")]
