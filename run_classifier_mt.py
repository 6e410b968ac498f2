#!/usr/bin/env python3
"""Multi-task classification: embedding and encoder shared, one two-layer classifier per task.

The code and the full usage are in uer/cli/run_classifier_mt.py (``python3 run_classifier_mt.py --help``).
"""
from uer.cli.run_classifier_mt import main

if __name__ == "__main__":
    main()
