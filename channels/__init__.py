"""Channel adapters: each knows one provider and nothing else (no database, no handlers)."""
