"""HTTP routes: thin translators between requests and the core."""
