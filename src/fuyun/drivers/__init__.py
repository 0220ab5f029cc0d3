"""Drivers converge devices to their desired state. The core knows none of them by name."""
