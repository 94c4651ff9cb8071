"""End-to-end tests of the device gateway."""
