"""Layer 2: runs the Flower app (``server/`` and ``clients/``) on one of three engines:
in-process, Ray simulation or Flower's deployment engine.
"""
