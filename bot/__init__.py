"""Sapa conversation core: message types, pipeline, outbox, app assembly."""
