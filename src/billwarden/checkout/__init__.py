"""The checkout domain: checkout sessions from purchase keys, customers, reconcile-session."""
