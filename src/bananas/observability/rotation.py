"""Tier 2, files: ``CompressingRotatingFileHandler`` rotates by size, gzips backups and
removes them by count and by age."""

from __future__ import annotations

import contextlib
import gzip
import logging
import logging.handlers
import os
import shutil
import time
from pathlib import Path


class CompressingRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotates at ``max_bytes``; backups are ``name.1.gz`` (newest) .. ``name.N.gz``, and
    any older than ``max_age_days`` are removed at each rotation.

    Args:
        path: the live log file.
        max_bytes: size that triggers a rotation.
        backups: how many rotated files to keep.
        max_age_days: remove rotated files older than this (0: keep regardless of age).
        compress: gzip rotated files.
    """

    def __init__(
        self, path: str | Path, *, max_bytes: int, backups: int, max_age_days: float = 0.0, compress: bool = True
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)
        self.max_age_days = max_age_days
        self.compress = compress
        if compress:
            self.namer = lambda name: name + ".gz"
            self.rotator = _gzip_rotate

    def doRollover(self) -> None:
        super().doRollover()
        self.remove_expired()

    def backups_on_disk(self) -> list[Path]:
        """Rotated files of this log, whatever their number."""
        base = Path(self.baseFilename)
        return sorted(
            p for p in base.parent.glob(base.name + ".*") if p.name[len(base.name) + 1 :].split(".")[0].isdigit()
        )

    def remove_expired(self) -> None:
        if self.max_age_days <= 0:
            return
        cutoff = time.time() - self.max_age_days * 86400
        for path in self.backups_on_disk():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def _gzip_rotate(source: str, dest: str) -> None:
    with open(source, "rb") as src, gzip.open(dest, "wb", compresslevel=6) as out:
        shutil.copyfileobj(src, out)
    os.remove(source)
