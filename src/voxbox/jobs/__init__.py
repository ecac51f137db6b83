"""Background work. In-process for now; a Redis- or Postgres-backed queue comes with scale-out."""
