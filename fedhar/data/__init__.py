"""HAR datasets, windowing and splits."""

DATASETS = ("wisdm", "wisdm2019", "hapt", "synthetic")
"""The names :func:`fedhar.data.registry.load_dataset` takes. Here, not in the registry, so that
the CLI can list them without importing the loaders (and numpy)."""
