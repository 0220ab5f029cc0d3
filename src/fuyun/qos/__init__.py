"""QoS: admission arithmetic and compiling guarantees per enforcement point (pure functions)."""
