"""CoAP message-layer suite (``testcases/coap/``): per role, SUT -> the coap cases it must not pass.

Every SUT the self-test runs against the coap suite that is not listed here (or a case not listed
for it) must pass every coap case of the role.
"""

from __future__ import annotations

# role -> SUT -> {case id: verdict}
EXPECTED: dict[str, dict[str, dict[str, str]]] = {}
