"""Identity tests use the shared fixtures of tests/conftest.py (`actors`, cheap argon2id)."""
