"""Scan log text for secrets: the chaos and fuzz runs' logs must hold none.

Two nets: the shapes of every secret billwarden or Stripe hands out (`sk_`/`rk_` Stripe keys,
`whsec_` signing secrets, `bw_test_`/`bw_live_` API keys, `bwi_` invitation tokens, signed JWTs),
and the exact values the run itself used (passwords, end-user secrets, anything else it knows), so
that a secret with no recognisable shape is caught too. Masked forms (`sk_test_...abcd`,
`bw_live_ab12…`) are not secrets and do not match: each shape needs a run of at least 16 secret
characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SHAPES: dict[str, re.Pattern[str]] = {
    "stripe secret key": re.compile(r"\bsk_(?:test|live)_[A-Za-z0-9]{16,}"),
    "stripe restricted key": re.compile(r"\brk_(?:test|live)_[A-Za-z0-9]{16,}"),
    "webhook signing secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=]{16,}"),
    "billwarden api key": re.compile(r"\bbw_(?:test|live)_[A-Za-z0-9_\-]{16,}"),
    "invitation token": re.compile(r"\bbwi_[A-Za-z0-9_\-]{16,}"),
    "signed token": re.compile(
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,}"
    ),
}


@dataclass(frozen=True)
class Finding:
    source: str
    line_number: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line_number}: {self.kind}: {self.excerpt}"


def _masked(line: str, start: int, end: int) -> str:
    """The line around the match, with the secret itself cut to its first 10 characters."""
    shown = line[start : min(end, start + 10)] + "[...]"
    return (line[max(0, start - 40) : start] + shown + line[end : end + 40]).strip()


def scan_text(text: str, *, source: str = "<text>", known: Iterable[str] = ()) -> list[Finding]:
    """Every secret-shaped run and every known secret value in `text`, line by line."""
    values = sorted({value for value in known if len(value) >= 8}, key=len, reverse=True)
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in SHAPES.items():
            for match in pattern.finditer(line):
                findings.append(
                    Finding(source, number, kind, _masked(line, match.start(), match.end()))
                )
        for value in values:
            at = line.find(value)
            if at >= 0:
                findings.append(
                    Finding(source, number, "known secret", _masked(line, at, at + len(value)))
                )
    return findings


def scan_files(paths: Iterable[Path], *, known: Iterable[str] = ()) -> list[Finding]:
    values = list(known)
    findings: list[Finding] = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        findings.extend(scan_text(text, source=str(path), known=values))
    return findings
