"""Integration tests of the device gateway on real PostgreSQL and Mosquitto."""
