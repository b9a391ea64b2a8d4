"""Cross-cutting service plumbing: request ids, logging, metrics, responses."""
