#!/usr/bin/env python3
"""Fill the idiom blanks of a ChID file with a model fine-tuned by run_chid.py.

``python3 inference/run_chid_infer.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("chid")()
