#!/usr/bin/env python3
"""Fine-tune span-extraction reading comprehension (CMRC 2018, SQuAD format): start and end scores per token.

The code and the full usage are in uer/cli/run_cmrc.py (``python3 run_cmrc.py --help``).
"""
from uer.cli.run_cmrc import main

if __name__ == "__main__":
    main()
