"""End-to-end tests: the whole system over MQTT and HTTP, on services the harness starts."""
