"""HTTP API for drivers, operators, the city and integrators (aiohttp)."""
