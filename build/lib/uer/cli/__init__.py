"""Entry points: the code of the top-level and inference scripts (each a thin wrapper that calls ``main``) and of the ``uer-*`` console commands."""
