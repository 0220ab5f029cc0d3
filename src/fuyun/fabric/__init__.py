"""The physical fabric as data: its file format, generator, checks and loader."""
