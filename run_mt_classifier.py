#!/usr/bin/env python3
"""The older name of run_classifier_mt.py in UER-py's docs: runs it with the same arguments.

An alias, not shared code: it imports the script (rather than executing its file) so that the worker
processes of a multi-GPU run can find its functions by module name.
"""
from uer.cli.run_classifier_mt import main

if __name__ == "__main__":
    main()
