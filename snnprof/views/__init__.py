"""Named views of per-layer statistics that reproduce the seed projects' own conventions."""
