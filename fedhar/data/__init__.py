"""HAR datasets, windowing and splits."""
