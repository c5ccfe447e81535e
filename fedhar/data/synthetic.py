"""A synthetic HAR dataset: tri-axial accelerometer streams, simulated, not recorded.

Physics (units m/s², gravity included, as a phone accelerometer reports specific force):

- **Postures** (sitting, standing, lying) differ by the direction of gravity in the sensor
  frame: upright thigh for standing, thigh horizontal for sitting, body horizontal for lying.
  A little low-frequency sway and slow posture drift ride on top.
- **Movements** (walking, jogging, stairs) add gait accelerations at the step frequency and
  its harmonics (vertical and forward) and at half the step frequency (lateral, once per
  stride), with a forward lean that grows with effort. Stairs have a lower cadence and a
  stronger forward component than walking.
- **Per user:** cadence (±25 %), movement amplitude (×0.7–1.4), harmonic phases (gait
  signature), posture angles, sensor noise (0.1–0.5 m/s²) and the sensor's mounting
  orientation (a random rotation up to 60°). A model trained on other users therefore meets a
  new user's rotated gravity and shifted cadence, and personalising on that user helps.

Everything is drawn from ``numpy.random.default_rng`` seeded by ``(seed, user index)``, so a
seed gives the same data on every run and adding users does not change the existing ones.
"""

from __future__ import annotations

import numpy as np

from fedhar.data.labels import select_classes
from fedhar.data.types import HarDataset, LoadReport, Segment

GRAVITY = 9.80665
ACTIVITIES = ["walking", "jogging", "stairs", "sitting", "standing", "lying"]
CHANNELS = ["acc_x", "acc_y", "acc_z"]
DEFAULT_FS = 20.0
MAX_MOUNT_ANGLE_DEG = 60.0

# Per movement: step frequency (Hz), vertical / forward / lateral amplitude (m/s²),
# relative amplitudes of the 2nd and 3rd step harmonics, forward lean (degrees).
_GAIT = {
    "walking": (1.85, 3.0, 1.6, 0.9, (0.45, 0.2), 6.0),
    "jogging": (2.75, 8.5, 3.5, 2.0, (0.6, 0.3), 12.0),
    "stairs": (1.5, 2.6, 2.4, 1.1, (0.7, 0.25), 14.0),
}
# Per posture: tilt of the "up" axis away from sensor +y, about which axis, in degrees.
_POSTURE = {"standing": (0.0, "z"), "sitting": (75.0, "z"), "lying": (85.0, "x")}


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """``[3, 3]`` rotation matrix about a unit ``axis`` (Rodrigues)."""
    x, y, z = axis / np.linalg.norm(axis)
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1.0 - np.cos(angle_rad)) * (k @ k)


def _axis_rotation(axis: str, angle_deg: float) -> np.ndarray:
    unit = {"x": np.array([1.0, 0.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}[axis]
    return _rotation(unit, np.deg2rad(angle_deg))


def _smooth_noise(rng: np.random.Generator, n: int, fs: float, cutoff_hz: float) -> np.ndarray:
    """``[n]`` unit-variance noise low-passed to about ``cutoff_hz`` (moving average)."""
    width = max(1, int(round(fs / max(cutoff_hz, 1e-3))))
    raw = rng.standard_normal(n + width)
    smooth = np.convolve(raw, np.ones(width) / width, mode="valid")[:n]
    return smooth / (smooth.std() + 1e-12)


def _user_profile(rng: np.random.Generator) -> dict[str, object]:
    axis = rng.standard_normal(3)
    return {
        "mount": _rotation(axis, np.deg2rad(rng.uniform(0.0, MAX_MOUNT_ANGLE_DEG))),
        "cadence": rng.uniform(0.75, 1.25),
        "amplitude": rng.uniform(0.7, 1.4),
        "noise": rng.uniform(0.1, 0.5),
        "phases": rng.uniform(0.0, 2.0 * np.pi, size=(3, 3)),
        "posture_jitter_deg": rng.normal(0.0, 12.0, size=3),
    }


def _activity_signal(
    activity: str, profile: dict[str, object], rng: np.random.Generator, n: int, fs: float
) -> np.ndarray:
    """``[n, 3]`` body-frame specific force (x forward, y up, z lateral) in m/s²."""
    jitter = profile["posture_jitter_deg"]
    if activity in _POSTURE:
        tilt, axis = _POSTURE[activity]
        index = list(_POSTURE).index(activity)
        drift = 3.0 * _smooth_noise(rng, n, fs, 0.02)
        up = np.empty((n, 3))
        base = _axis_rotation(axis, tilt + jitter[index])
        for start in range(0, n, int(fs)):
            stop = min(n, start + int(fs))
            sway = _axis_rotation("x", float(drift[start]))
            up[start:stop] = (base @ sway @ np.array([0.0, 1.0, 0.0]))[None, :]
        sway_noise = 0.08 * np.stack([_smooth_noise(rng, n, fs, 1.0) for _ in range(3)], axis=1)
        return GRAVITY * up + sway_noise
    step_hz, vertical, forward, lateral, harmonics, lean = _GAIT[activity]
    freq = step_hz * profile["cadence"] * (1.0 + 0.03 * _smooth_noise(rng, n, fs, 0.05))
    phase = 2.0 * np.pi * np.cumsum(freq) / fs + rng.uniform(0.0, 2.0 * np.pi)
    amp = profile["amplitude"] * (1.0 + 0.08 * _smooth_noise(rng, n, fs, 0.1))
    phases = profile["phases"]
    nyquist_margin = 0.45 * fs

    def harmonic_sum(row: int) -> np.ndarray:
        total = np.sin(phase + phases[row, 0])
        for k, rel in enumerate(harmonics, start=2):
            if k * step_hz * profile["cadence"] < nyquist_margin:
                total = total + rel * np.sin(k * phase + phases[row, k - 1])
        return total

    dynamic = np.stack(
        [
            forward * harmonic_sum(0),
            vertical * harmonic_sum(1),
            lateral * np.sin(0.5 * phase + phases[2, 0]),
        ],
        axis=1,
    )
    up = _axis_rotation("z", lean + jitter[0]) @ np.array([0.0, 1.0, 0.0])
    return GRAVITY * up[None, :] + amp[:, None] * dynamic


def generate(
    n_users: int = 12,
    seconds_per_activity: float = 60.0,
    *,
    fs: float = DEFAULT_FS,
    seed: int = 0,
    classes: list[str] | None = None,
) -> HarDataset:
    """A synthetic dataset: for each user, one segment of ``seconds_per_activity`` per class.

    Args:
        n_users: number of users, ids ``"1"``..``str(n_users)``; >= 1.
        seconds_per_activity: seconds of signal per user and activity; > 0.
        fs: sample rate in Hz; >= 10.
        seed: random seed; the same seed gives identical data.
        classes: a subset of walking, jogging, stairs, sitting, standing, lying (or merges
            ``"name=a+b"``); default all six.

    Returns:
        A :class:`HarDataset` named ``synthetic`` with channels acc_x, acc_y, acc_z in m/s².
    """
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ValueError(f"synthetic: n_users must be an integer >= 1, got {n_users!r}")
    if not seconds_per_activity > 0:
        raise ValueError(
            f"synthetic: seconds_per_activity must be > 0, got {seconds_per_activity!r}"
        )
    if not fs >= 10:
        raise ValueError(f"synthetic: fs must be >= 10 Hz, got {fs!r}")
    names, mapping = select_classes("synthetic", {a: a for a in ACTIVITIES}, classes, ACTIVITIES)
    n = int(round(seconds_per_activity * fs))
    segments = []
    for index in range(n_users):
        rng = np.random.default_rng([seed, index])
        profile = _user_profile(rng)
        for activity in ACTIVITIES:
            # Every activity is drawn, selected or not, so a class subset leaves the others'
            # samples unchanged.
            body = _activity_signal(activity, profile, rng, n, fs)
            signal = body @ profile["mount"].T + profile["noise"] * rng.standard_normal((n, 3))
            label = mapping.get(activity)
            if label is None:
                continue
            segments.append(
                Segment(
                    user=str(index + 1),
                    label=label,
                    signal=signal.astype(np.float32),
                    fs=float(fs),
                    t=np.arange(n, dtype=np.float64) / fs,
                    source=f"synthetic(seed={seed}, user={index + 1}, activity={activity})",
                )
            )
    report = LoadReport(
        records_ok=sum(s.signal.shape[0] for s in segments),
        notes=[
            f"SYNTHETIC data (simulated, not recorded): {n_users} users, "
            f"{seconds_per_activity:g} s per activity at {fs:g} Hz, seed {seed}; "
            "acceleration in m/s^2 with gravity; per-user cadence, amplitude, noise and "
            f"sensor mounting rotation up to {MAX_MOUNT_ANGLE_DEG:g} degrees"
        ],
    )
    return HarDataset("synthetic", names, list(CHANNELS), float(fs), segments, report)
