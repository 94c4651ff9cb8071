"""Development-only tools: embedded PostgreSQL and Mosquitto, the test harness, process starters."""
