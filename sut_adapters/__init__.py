"""SUT adapters: one module per kind of system under test.

* :mod:`sut_adapters.base` - the narrow adapter protocol every SUT kind implements;
* :mod:`sut_adapters.reference` - the embedded, correct reference implementation (default);
* :mod:`sut_adapters.process` - any implementation in any language: a SUT profile and a JSON-lines
  upper-tester protocol on the process's stdin/stdout (docs/upper-tester-protocol.md);
* :mod:`sut_adapters.faulty` - variants of the reference, each breaking one requirement;
* :mod:`sut_adapters.conformant` - variants of the reference, each making another choice the
  clauses and RFC 7252 allow: every case must pass them;
* :mod:`sut_adapters.registry` - ``--sut NAME`` to adapter.
"""
