"""Reference training loops of the zoo's seed projects, dataset readers and synthetic data."""
