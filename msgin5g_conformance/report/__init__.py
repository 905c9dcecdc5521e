"""Reports built from a run: sequence charts, Allure annotations, the compliance matrix, the CI gate.

Modules:

* :mod:`.msc` - one SVG message sequence chart per test case, drawn from the captured exchange;
* :mod:`.allure` - labels, links, steps and evidence for allure-pytest while a case runs;
* :mod:`.matrix` - ``compliance.json`` / ``compliance.md``: every catalogued requirement and its verdicts;
* :mod:`.gate` - the pass/fail decision for CI, with an expiring waiver file;
* :mod:`.html` - the single-file Allure Report 3 HTML, built with the ``allure`` npm package.
"""
