"""``--sut NAME`` to adapter: the built-in names, and the error for an unknown one."""

from __future__ import annotations

from typing import Any

from msgin5g_conformance.errors import DefinitionError, UsageError
from msgin5g_conformance.yamlsource import MAX_FILE_BYTES

from .base import SutAdapter
from .conformant import cue as conformant_cue
from .conformant import gateway as conformant_gateway
from .conformant import relay as conformant_relay
from .faulty import coap as faulty_coap
from .faulty import cue as faulty_cue
from .faulty import gateway as faulty_gateway
from .faulty import relay as faulty
from .process import ProcessPool
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


def make_adapter(spec: str, max_file_bytes: int = MAX_FILE_BYTES) -> SutAdapter:
    """Build the adapter for ``--sut``; an unknown name is a UsageError listing the known ones.
    ``max_file_bytes`` bounds a SUT profile (the run's profile's ``limits.max_file_bytes``)."""
    if spec.endswith((".yaml", ".yml")):  # a SUT profile: an implementation outside the harness
        try:
            pool = ProcessPool(spec, max_file_bytes)
            return pool if pool.instances > 1 else pool.members[0]
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


def identity(adapter: SutAdapter) -> dict[str, Any]:
    """Who the SUT is, as a report names it: its name and version first, the path only as a detail.

    An external implementation is named by its SUT profile (``name``, ``version``,
    ``description``; ``source`` is the profile's path); the embedded ones by their ``--sut``
    name, with the harness's version (they ship with it) and what the variant is. The ``ready``
    event's own name and version, where the SUT sent one, are added by :func:`confirmed`.
    """
    from msgin5g_conformance import __version__

    profile = getattr(adapter, "sut", None)  # ProcessAdapter: its validated SUT profile
    if profile is not None:
        kind, version = "external", profile.version
        description, source = profile.description, profile.source
    else:
        kind, _, variant = adapter.name.partition(":")
        kind = kind if variant else "reference"
        version, source = __version__, None
        if kind == "faulty":
            broken = FAULTY[variant][2] if variant in FAULTY else FAULTY_COAP[variant][1]
            description = f"faulty variant of the embedded reference, built to break {broken}"
        elif kind == "conformant":
            description = f"conformant variant of the embedded reference: {CONFORMANT[variant][2]}"
        else:
            description = "the harness's embedded reference implementation of the three roles"
    return {
        "name": adapter.name,
        "version": version,
        "kind": kind,
        "description": description,
        "source": source,
        "roles": sorted(adapter.roles),
        "capabilities": sorted(adapter.capabilities),
        "options": sorted(adapter.options),
    }


def confirmed(adapter: SutAdapter) -> dict[str, str] | None:
    """The name and version the SUT gave in its ``ready`` event (None before it started, or for
    an embedded SUT, which sends none)."""
    found = getattr(adapter, "implementation", None)
    if not isinstance(found, dict) or not found.get("name"):
        return None
    return {k: str(found[k]) for k in ("name", "version") if found.get(k) is not None}
