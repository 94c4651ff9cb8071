"""MQTT device gateway: validated, idempotent, batched sensor ingestion acknowledged after commit."""
