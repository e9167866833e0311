"""Reports: per-image JUnit files, and the tools that read them (compare, summary, trend)."""
