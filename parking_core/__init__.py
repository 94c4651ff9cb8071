"""Parking domain: lots, spots, occupancy and sessions (pure), plus settings and store adapters."""
