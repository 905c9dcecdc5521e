"""The capture read path the analysis uses: the streaming reader's names, in one place."""

from __future__ import annotations

from msgin5g_conformance.analyze.reader import CaptureFileError, Frame, Problem, capture_files, iter_capture

__all__ = ["CaptureFileError", "Frame", "Problem", "capture_files", "iter_capture"]
