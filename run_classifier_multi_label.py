#!/usr/bin/env python3
"""Fine-tune a multi-label classifier (a sigmoid per label, BCE; micro/macro-F1 and exact match).

``python3 run_classifier_multi_label.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("multi_label")()
