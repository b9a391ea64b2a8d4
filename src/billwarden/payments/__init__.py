"""The payments domain: invoices and one-time payments mirrored per subject."""
