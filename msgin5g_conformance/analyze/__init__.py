"""Offline analysis of a capture: the passive checks of ``msgin5g-conformance analyze``."""
