"""Usage: events counted once, counters per UTC day and month, and the figures quotas read."""
