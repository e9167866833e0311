"""Root conftest: the plugin itself is loaded through its pytest11 entry point.

Suites under suites/ get every fixture from the plugin (azl_host, azl_hosts, azl_metric...);
put fixtures shared by your own suites here or in a conftest.py beside them.
"""
