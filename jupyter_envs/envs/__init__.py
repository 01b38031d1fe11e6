"""The environment core: discovery, reading, operations. No Jupyter imports here."""
