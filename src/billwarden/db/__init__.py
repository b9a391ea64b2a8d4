"""Storage: async engine, the per-request session, the declarative base and migrations."""
