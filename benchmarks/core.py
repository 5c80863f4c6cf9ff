"""Core-engine benchmark: a thin wrapper over ``bananas bench`` (package ``bananas.bench``).

Run: ``.venv/bin/python -m benchmarks.core [--jobs 20000] [--json out.json] [--quick]
[--scenario drain ...]``, the same options as ``bananas bench``. For the side-by-side
comparison with other task queues see ``benchmarks/compare/run.py``.
"""

from __future__ import annotations

from bananas.cli.bench import bench

if __name__ == "__main__":
    bench(prog_name="python -m benchmarks.core")
