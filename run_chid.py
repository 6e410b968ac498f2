#!/usr/bin/env python3
"""Fine-tune idiom cloze (ChID): choose the idiom that fills each #idiomNNNNNN# blank from its candidates.

The code and the full usage are in uer/cli/run_chid.py (``python3 run_chid.py --help``).
"""
from uer.cli.run_chid import main

if __name__ == "__main__":
    main()
