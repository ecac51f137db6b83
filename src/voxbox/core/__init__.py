"""Use cases, one module per capability: the rules (who sees what, idempotency, events)."""
