"""Server side: the Flower ServerApp and its strategy."""
