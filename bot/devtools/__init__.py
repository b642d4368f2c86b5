"""Tools for development and tests, never used by a running Sapa: the fake providers and the simulator."""
