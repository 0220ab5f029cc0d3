"""Reachability over compiled state: what the devices would let through, proved from their IR."""
