#!/usr/bin/env python3
"""Top-n MLM predictions, with probabilities, for masked tokens of each input line.

The code and the full usage are in uer/tools/cloze.py (``python3 scripts/cloze_test.py --help``).
"""
from uer.tools.cloze import main

if __name__ == "__main__":
    main()
