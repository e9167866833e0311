"""Pure analysers over recorded output: no I/O, tested on real recordings."""
