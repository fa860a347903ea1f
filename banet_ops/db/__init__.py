"""PostGIS access: engines, schema migrations (``sql/migrations``) and repositories."""
