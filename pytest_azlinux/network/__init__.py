"""Network measurements between two ends (hosts today, pods through the same seam)."""
