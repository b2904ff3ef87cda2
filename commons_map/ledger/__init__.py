"""The time ledger: accounts, immutable double-entry transfers, limits, statements, checks."""
