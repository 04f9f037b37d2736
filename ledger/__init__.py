"""The stock ledger's domain and application service: pure Python on eventsourcing."""
