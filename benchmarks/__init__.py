"""safe-pip's benchmarks: what the guard costs, measured against plain pip in the same run.

``python -m benchmarks`` (or ``python benchmarks/run.py``) prints the table in the README;
``--quick`` is the smoke mode the test suite runs. Never part of the package.
"""
