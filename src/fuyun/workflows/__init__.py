"""The persisted step engine and the operations built on it (provision, return, ...)."""
