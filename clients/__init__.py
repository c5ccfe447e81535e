"""Device side: the C training library, its ctypes binding and the Flower ClientApp."""
