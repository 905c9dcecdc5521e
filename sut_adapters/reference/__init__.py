"""The embedded reference SUT: correct implementations of the MSGin5G roles on aiocoap."""

from .adapter import ReferenceAdapter

__all__ = ["ReferenceAdapter"]
