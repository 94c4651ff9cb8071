"""Store adapters of billing: asyncpg repositories for invoices, payments, arrears, reconciliation."""
