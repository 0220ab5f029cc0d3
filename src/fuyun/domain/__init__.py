"""The system's words as typed values and errors. No I/O lives here."""
