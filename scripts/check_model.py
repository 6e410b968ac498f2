#!/usr/bin/env python3
"""What a model file holds, and whether it loads with a given config.

The code and the full usage are in uer/tools/check_model.py (``python3 scripts/check_model.py --help``).
"""
from uer.tools.check_model import main

if __name__ == "__main__":
    main()
