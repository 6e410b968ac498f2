"""Log setup: rank 0 reports, the other ranks only warn."""
from __future__ import annotations

import logging
import sys


def setup_logging(is_main: bool = True, rank: int = 0) -> None:
    fmt = "%(asctime)s %(message)s" if rank == 0 else f"%(asctime)s [rank {rank}] %(message)s"
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING, format=fmt, datefmt="%H:%M:%S",
                        stream=sys.stdout, force=True)
