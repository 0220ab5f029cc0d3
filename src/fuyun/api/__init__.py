"""The REST API: a thin edge over services/."""
