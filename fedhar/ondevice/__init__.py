"""Layer 6: on-device code: the C library (``csrc/``), its ctypes bindings, the analytic
estimator and the estimator's calibration against the papers' tables.
"""
