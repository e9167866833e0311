"""Snapshot and restore flows with data verification (host backends; CSI shares verify.py)."""
