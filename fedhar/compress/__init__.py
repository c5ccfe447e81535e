"""Compression of a trained float model the way the source papers do it.

* :mod:`~fedhar.compress.qat`: PACT quantization-aware training of a folded model at fixed or
  per-layer bits, exported as a :class:`~fedhar.models.quantized.QNet` (Daghero et al. 2022
  §4.1);
* :mod:`~fedhar.compress.edmips`: the EdMIPS differentiable mixed-precision search
  (Daghero et al. 2022 §4.2, eqs. (1)–(2));
* :mod:`~fedhar.compress.ptq`: Contoli et al. 2023's post-training formats (float32, dynamic
  range, full integer).
* :mod:`~fedhar.compress.nas`: zhou2024's hardware-aware search (DCS channel gates, per-layer
  operator choice, MAC and memory terms from the C library's estimator) and the plain model it
  finds (built on :mod:`~fedhar.compress.gates`); :mod:`~fedhar.compress.search` runs its
  bi-level search; :mod:`~fedhar.compress.nas_baselines` runs the same search on the first
  stage of DCL and TinyHAR (PyTorch-only models), as the paper does.

Building blocks: :mod:`~fedhar.compress.fakequant` (quantizers and their gradients),
:mod:`~fedhar.compress.calibration` (ranges from calibration windows),
:mod:`~fedhar.compress.walk` (the forward pass over a folded spec) and
:mod:`~fedhar.compress.training` (the deterministic training loop).
"""
