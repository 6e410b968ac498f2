#!/usr/bin/env python3
"""Document-based question answering as pair classification: is sentence text_b an answer to question text_a?

The code and the full usage are in uer/cli/run_dbqa.py (``python3 run_dbqa.py --help``).
"""
from uer.cli.run_dbqa import main

if __name__ == "__main__":
    main()
