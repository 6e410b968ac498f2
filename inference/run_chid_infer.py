#!/usr/bin/env python3
"""Fill the idiom blanks of a ChID file with a model fine-tuned by run_chid.py.

The code and the full usage are in uer/cli/run_chid_infer.py (``python3 inference/run_chid_infer.py --help``).
"""
from uer.cli.run_chid_infer import main

if __name__ == "__main__":
    main()
