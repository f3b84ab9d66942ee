"""Infrastructure shared by the API and the pipelines: settings, database, photo storage."""
