"""``--sut NAME`` to adapter: the built-in names, and the error for an unknown one."""

from __future__ import annotations

from typing import Any

from msgin5g_conformance.errors import DefinitionError, UsageError

from .base import SutAdapter
from .conformant import cue as conformant_cue
from .conformant import gateway as conformant_gateway
from .conformant import relay as conformant_relay
from .faulty import coap as faulty_coap
from .faulty import cue as faulty_cue
from .faulty import gateway as faulty_gateway
from .faulty import relay as faulty
from .process import ProcessAdapter
from .reference import ReferenceAdapter

# faulty variant name -> (ReferenceAdapter keyword to replace, class, requirement it breaks)
FAULTY: dict[str, tuple[str, type[Any], str]] = {
    **{n: ("relay_class", c, r) for n, (c, r) in {**faulty.VARIANTS, **faulty.ROBUSTNESS}.items()},
    **{n: ("gateway_class", c, r) for n, (c, r) in faulty_gateway.VARIANTS.items()},
    **{n: ("cue_class", c, r) for n, (c, r) in faulty_cue.VARIANTS.items()},
}


# CoAP message-layer variants (faulty/coap.py): name -> (ReferenceAdapter keyword -> class for
# every role, requirement it breaks). Apart from FAULTY because each replaces all three roles.
FAULTY_COAP: dict[str, tuple[dict[str, type[Any]], str]] = dict(faulty_coap.VARIANTS)


# conformant variant name -> (ReferenceAdapter keyword to replace, class, the sentence that allows it)
CONFORMANT: dict[str, tuple[str, type[Any], str]] = {
    **{n: ("relay_class", c, why) for n, (c, why) in conformant_relay.VARIANTS.items()},
    **{n: ("gateway_class", c, why) for n, (c, why) in conformant_gateway.VARIANTS.items()},
    **{n: ("cue_class", c, why) for n, (c, why) in conformant_cue.VARIANTS.items()},
}


def known_names() -> list[str]:
    return [
        "reference",
        *(f"faulty:{name}" for name in (*FAULTY, *FAULTY_COAP)),
        *(f"conformant:{name}" for name in CONFORMANT),
    ]


def make_adapter(spec: str) -> SutAdapter:
    """Build the adapter for ``--sut``; an unknown name is a UsageError listing the known ones."""
    if spec.endswith((".yaml", ".yml")):  # a SUT profile: an implementation outside the harness
        try:
            return ProcessAdapter(spec)
        except DefinitionError as exc:
            raise UsageError(f"bad SUT profile {spec}:\n{exc}") from None
    if spec == "reference":
        return ReferenceAdapter()
    kind, _, name = spec.partition(":")
    if kind == "faulty" and name in FAULTY_COAP:
        return ReferenceAdapter(name=spec, **FAULTY_COAP[name][0])
    table = {"faulty": FAULTY, "conformant": CONFORMANT}.get(kind, {})
    if name in table:
        keyword, cls, _ = table[name]
        adapter: SutAdapter = ReferenceAdapter(name=spec, **{keyword: cls})
        return adapter
    raise UsageError(
        f"unknown SUT {spec!r}; expected one of: {', '.join(known_names())}, or the path of a SUT profile (.yaml)"
    )
