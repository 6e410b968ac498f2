#!/usr/bin/env python3
"""Fine-tune a regression model (a score per text or pair, MSE; Spearman/Pearson on dev and test).

``python3 run_regression.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("regression")()
