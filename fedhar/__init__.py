"""fedhar: federated on-device personalization simulator for Human Activity Recognition."""

__version__ = "0.1.0"
