"""Entry points: the code of the top-level and inference scripts (each a thin wrapper that calls ``main``) and of the ``uer-*`` console commands."""
from uer.utils.runtime import prefer_passive_openmp_wait

# Before any entry point imports torch (OpenMP reads its wait policy when it loads).
prefer_passive_openmp_wait()
