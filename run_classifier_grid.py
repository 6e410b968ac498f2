#!/usr/bin/env python3
"""Grid search of the classifier's batch size, learning rate and epochs by dev accuracy.

``python3 run_classifier_grid.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("classifier_grid")()
