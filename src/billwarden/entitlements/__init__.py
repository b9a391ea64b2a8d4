"""The entitlements domain: what each subject may do, derived from the mirror and the catalog."""
