"""Conformant variants of the reference SUT: each makes another choice the clauses and RFC 7252
allow (one module per role), and cites the sentence that allows it.

They are the mirror of :mod:`sut_adapters.faulty`: the self-test runs every suite against each and
requires every applicable case to pass. A harness that over-specifies shows up here, or nowhere.
Select one with ``--sut conformant:NAME``.
"""
