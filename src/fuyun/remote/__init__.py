"""Clients of the fuyun API for processes that run away from it (host agents)."""
