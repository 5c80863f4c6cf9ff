"""``python -m bananas``: the same as the ``bananas`` command."""

from __future__ import annotations

from bananas.cli import main

if __name__ == "__main__":
    main(prog_name="bananas")
