#!/usr/bin/env python3
"""Multi-task classification: embedding and encoder shared, one two-layer classifier per task.

``python3 run_classifier_mt.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("classifier_mt")()
