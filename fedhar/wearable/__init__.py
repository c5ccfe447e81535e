"""The simulated wearable: battery, loads, charging habits, schedules, policies and the SimPy
device that ties them together (see :mod:`fedhar.wearable.simulation`)."""
