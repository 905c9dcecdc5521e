"""SUT adapters: one module per kind of system under test.

* :mod:`sut_adapters.base` - the narrow adapter protocol every SUT kind implements;
* :mod:`sut_adapters.reference` - the embedded, correct reference implementation (default);
* :mod:`sut_adapters.faulty` - variants of the reference, each breaking one requirement;
* :mod:`sut_adapters.registry` - ``--sut NAME`` to adapter.
"""
