#!/usr/bin/env python3
"""The older name of run_classifier_mt.py in UER-py's docs: runs it with the same arguments.

``python3 run_mt_classifier.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("classifier_mt")()
