"""Gravity / body split of a total-acceleration signal, as UCI HAR does it.

The UCI HAPT README (``uci_har/README.txt``, line 14) gives the filter: "The sensor
acceleration signal, which has gravitational and body motion components, was separated using a
Butterworth low-pass filter into body acceleration and gravity. The gravitational force is
assumed to have only low frequency components, therefore a filter with 0.3 Hz cutoff frequency
was used."

It names neither the order nor how the filter was run. This module's choices:

- order 3 (the task's; UCI HAR's ``features_info.txt`` uses a 3rd-order Butterworth for its
  other, 20 Hz, noise filter). UCI HAR's median and 20 Hz noise filters are not applied.
- the digital Butterworth of the bilinear transform with the cutoff pre-warped (the design of
  MATLAB's and SciPy's ``butter``), whose squared magnitude is exactly
  ``G(f) = 1 / (1 + (tan(pi f / fs) / tan(pi fc / fs)) ** (2 * order))``;
- run forward and backward (zero phase, as ``filtfilt``: gravity is not delayed against the
  motion), which multiplies the spectrum by ``G(f)``. It is computed in the frequency domain on
  the signal extended at each end by its odd reflection (``2 x[0] - x[k]``, the whole signal
  long), which keeps the ends free of wrap-around.

``gravity = lowpass(total)`` and ``body = total - gravity``, so they sum back to the total.
"""

from __future__ import annotations

import numpy as np

GRAVITY_CUTOFF_HZ = 0.3
"""Cutoff of the gravity filter, in Hz (UCI HAPT README, quoted above)."""
GRAVITY_ORDER = 3
"""Butterworth order of the gravity filter (a choice, see the module docstring)."""


def butterworth_power_gain(
    freqs: np.ndarray, fs: float, cutoff: float = GRAVITY_CUTOFF_HZ, order: int = GRAVITY_ORDER
) -> np.ndarray:
    """``|H|^2`` at ``freqs`` (Hz) of the bilinear-transform digital Butterworth low-pass for
    a signal at ``fs`` Hz, i.e. the gain of the forward-backward filter: 1 at 0 Hz, 1/2 at
    ``cutoff``, 0 at ``fs / 2``."""
    if order < 1 or not 0 < cutoff < fs / 2:
        raise ValueError(
            f"Butterworth: need order >= 1 and 0 < cutoff < fs/2, got order {order}, "
            f"cutoff {cutoff} Hz at fs {fs} Hz"
        )
    ratio = np.tan(np.pi * np.minimum(np.abs(freqs), fs / 2) / fs) / np.tan(np.pi * cutoff / fs)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + ratio ** (2 * order))


def lowpass_zero_phase(
    signal: np.ndarray, fs: float, cutoff: float = GRAVITY_CUTOFF_HZ, order: int = GRAVITY_ORDER
) -> np.ndarray:
    """Zero-phase Butterworth low-pass of finite ``signal [T, C]`` at ``fs`` Hz, per column;
    float64 ``[T, C]``."""
    x = np.asarray(signal, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        return x.copy()
    pad = n - 1
    head = 2 * x[0] - x[pad:0:-1]
    tail = 2 * x[-1] - x[-2 : -pad - 2 : -1]
    ext = np.concatenate([head, x, tail], axis=0)
    gain = butterworth_power_gain(np.fft.rfftfreq(ext.shape[0], 1.0 / fs), fs, cutoff, order)
    out = np.fft.irfft(np.fft.rfft(ext, axis=0) * gain[:, None], n=ext.shape[0], axis=0)
    return out[pad : pad + n]


def split_gravity(total: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gravity, body)``, float32 ``[T, 3]`` each in the units of ``total [T, 3]`` at ``fs``
    Hz: gravity is the 0.3 Hz low-pass, body the rest. Rows holding a NaN stay NaN; each run of
    finite rows is filtered on its own."""
    x = np.asarray(total, dtype=np.float64)
    gravity = np.full_like(x, np.nan)
    finite = np.all(np.isfinite(x), axis=1)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.astype(np.int8), [0]))))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        gravity[a:b] = lowpass_zero_phase(x[a:b], fs)
    return gravity.astype(np.float32), (x - gravity).astype(np.float32)
