"""Use cases. The transaction boundary and tenant scoping live here and only here."""
