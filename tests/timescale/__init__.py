"""TimescaleDB tier: the schema in TimescaleDB mode on real TimescaleDB (PGlite in Node)."""
