"""Kernels inside conda environments: discovery, the activating provisioner, the fallback kernel."""
