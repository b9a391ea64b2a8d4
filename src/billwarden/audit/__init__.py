"""The audit log: who changed what, when, before and after, and why."""
