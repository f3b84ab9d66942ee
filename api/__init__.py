"""HTTP API (FastAPI) and the `skintrouble` command line."""
