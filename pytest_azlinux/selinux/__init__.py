"""SELinux on a host: mode readings, denial collection, allowlist, container domains, watcher."""
