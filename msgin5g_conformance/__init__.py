"""MSGin5G constrained-device configuration conformance harness (TS 24.538 clause 6.2.2)."""

__version__ = "0.1.0"
