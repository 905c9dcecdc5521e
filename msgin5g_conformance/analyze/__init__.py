"""Offline analysis of a capture: the live suite's rules judged passively (``msgin5g-conformance analyze``)."""
