"""Adapters of the parking domain: settings, logs, migrations, provisioning, broker credential files."""
