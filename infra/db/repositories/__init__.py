"""All queries live here; services call repositories and never commit themselves."""
