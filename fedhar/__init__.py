"""fedhar: federated on-device personalization simulator for Human Activity Recognition.

A research tool does not phone home: importing fedhar turns Flower's telemetry off
(``FLWR_TELEMETRY_ENABLED=0``) unless the environment already sets it. Flower reads the
variable once, when ``flwr`` is first imported, and every process fedhar starts inherits it.
"""

import os

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

__version__ = "0.1.0"
