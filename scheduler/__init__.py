"""Durable tasks and the clock that runs them."""
