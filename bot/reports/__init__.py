"""Reports computed from the database: the management report (`sapa report`, CRM-5) and the loyalty
programme's (CRM-4.5)."""
