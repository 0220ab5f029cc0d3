"""Security policy: intent → enforcement IR → rendered device configuration. Pure."""
