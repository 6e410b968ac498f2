#!/usr/bin/env python3
"""Plot a training run (a log file or a TensorBoard folder) into a PNG; the code is in uer/cli/plot_training.py."""


from uer.cli.plot_training import main

if __name__ == "__main__":
    main()
