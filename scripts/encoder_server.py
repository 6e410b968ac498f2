#!/usr/bin/env python3
"""Serve sentence vectors of a pre-trained model over HTTP (POST /encode, GET /health, GET /info).

The code and the full usage are in uer/cli/encoder_server.py (``python3 scripts/encoder_server.py --help``);
the Python client is uer.serving.client.EncoderClient.
"""
from uer.cli.encoder_server import main

if __name__ == "__main__":
    main()
