"""Faulty variants of the reference SUT, each breaking exactly one requirement (one module per role).

They prove that every test case can fail: the self-test runs each role's suite against every
variant and checks that the cases of the broken requirement fail, and that every failing check
decides that requirement. Select one with ``--sut faulty:NAME``.
"""
