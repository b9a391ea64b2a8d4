"""The plan catalog of a project: families, plans by purchase key, prices per mode, features,
quotas and the free tier; versioned, loaded from TOML or JSON."""
