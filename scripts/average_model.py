#!/usr/bin/env python3
"""Element-wise mean of several model files of one architecture.

The code and the full usage are in uer/tools/average.py (``python3 scripts/average_model.py --help``).
"""
from uer.tools.average import main

if __name__ == "__main__":
    main(prog="average_model.py")
