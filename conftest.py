"""Repository-level pytest configuration.

The conformance plugin itself is loaded through its ``pytest11`` entry point (the package is
installed by ``make``); here we only keep output folders out of collection.
"""

collect_ignore_glob = ["pcaps/*", "reports/*", ".venv/*", "build/*"]
