"""Engines that solve and install: py-rattler (embedded) and the conda family of CLIs."""
