"""Installed packages, whatever the image keeps: the rpm database, dpkg's, or SPDX manifests."""
