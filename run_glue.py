#!/usr/bin/env python3
"""Fine-tune and evaluate on a GLUE task with HuggingFace run_glue.py's flags (a local HF model folder in,
a fine-tuned HF folder out). ``python3 run_glue.py --help``; the command is uer/cli/glue.py, the task
uer/finetune/tasks/glue.py.
"""
from uer.cli.glue import main

if __name__ == "__main__":
    main()
