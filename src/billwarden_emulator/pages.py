"""Hosted invoice and receipt pages: what an invoice's `hosted_invoice_url` and `invoice_pdf`, and
a charge's `receipt_url`, point to. Like the hosted checkout page, they need no key: the id in
the URL is the secret, as on Stripe.

    GET /_emulator/invoices/{id}       the invoice as a page (number, status, lines, amounts)
    GET /_emulator/invoices/{id}/pdf   the same as a one-page PDF
    GET /_emulator/receipts/{id}       the receipt of a payment intent's charge
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from billwarden_emulator.billing.money import format_amount
from billwarden_emulator.state import JSON

if TYPE_CHECKING:
    from billwarden_emulator.app import Emulator


def _find(emulator: Emulator, collection: str, object_id: str) -> JSON | None:
    for account in emulator.store.accounts.values():
        found = account.collection(collection).get(object_id)
        if found is not None:
            return found
    return None


def invoice_lines(invoice: JSON) -> list[str]:
    """The invoice as lines of text, shared by the page and the PDF."""
    currency = invoice["currency"]
    lines = [
        f"Invoice {invoice['number'] or invoice['id']}",
        f"Status: {invoice['status']}",
        f"Customer: {invoice['customer_email'] or invoice['customer']}",
    ]
    lines += [
        f"{line['description'] or ''}: {format_amount(line['amount'], currency)}"
        for line in invoice["lines"]["data"]
    ]
    lines += [
        f"Amount due: {format_amount(invoice['amount_due'], currency)}",
        f"Amount paid: {format_amount(invoice['amount_paid'], currency)}",
    ]
    return lines


def _html(title: str, lines: Iterable[str]) -> HTMLResponse:
    items = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{items}"
    )


def pdf_document(lines: list[str]) -> bytes:
    """A minimal one-page PDF (Helvetica, one line of text per entry)."""

    def escape(text: str) -> str:
        ascii_text = text.encode("latin-1", "replace").decode("latin-1")
        return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "".join(f"({escape(line)}) Tj 0 -18 Td " for line in lines)
    stream = f"BT /F1 12 Tf 56 780 Td {text}ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    document = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    document += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    document += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(document)


def routes(emulator: Emulator) -> list[Route]:
    async def invoice_page(request: Request) -> Response:
        invoice = _find(emulator, "invoices", request.path_params["id"])
        if invoice is None:
            return HTMLResponse("<h1>Invoice not found</h1>", 404)
        return _html(f"Invoice {invoice['number'] or invoice['id']}", invoice_lines(invoice)[1:])

    async def invoice_pdf(request: Request) -> Response:
        invoice = _find(emulator, "invoices", request.path_params["id"])
        if invoice is None:
            return HTMLResponse("<h1>Invoice not found</h1>", 404)
        return Response(pdf_document(invoice_lines(invoice)), media_type="application/pdf")

    async def receipt_page(request: Request) -> Response:
        intent = _find(emulator, "payment_intents", request.path_params["id"])
        if intent is None or intent["status"] != "succeeded":
            return HTMLResponse("<h1>Receipt not found</h1>", 404)
        return _html(
            "Receipt",
            [
                f"Payment {intent['id']}",
                f"Amount paid: {format_amount(intent['amount_received'], intent['currency'])}",
                *([intent["description"]] if intent["description"] else []),
            ],
        )

    return [
        Route("/_emulator/invoices/{id}", invoice_page, methods=["GET"]),
        Route("/_emulator/invoices/{id}/pdf", invoice_pdf, methods=["GET"]),
        Route("/_emulator/receipts/{id}", receipt_page, methods=["GET"]),
    ]
