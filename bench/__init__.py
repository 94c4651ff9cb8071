"""Benchmarks of the device gateway against the bare limits of the broker and the database."""
