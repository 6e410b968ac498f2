#!/usr/bin/env python3
"""Fine-tune a classifier on single texts or pairs (UER-py's command line).

``python3 run_classifier.py --help``; the task is uer/finetune/tasks/classifier.py, the command uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("classifier")()
