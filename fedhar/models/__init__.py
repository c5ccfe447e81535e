"""Model specs (plain data) and the PyTorch reference network built from them."""

from fedhar.models.spec import LayerSpec, ModelSpec, build_spec, cnn3, daghero_cnn

__all__ = ["LayerSpec", "ModelSpec", "build_spec", "cnn3", "daghero_cnn"]
