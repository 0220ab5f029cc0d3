"""The ``fuyun`` command line: a thin edge over the REST API (and ``serve`` itself)."""
