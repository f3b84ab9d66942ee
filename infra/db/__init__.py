"""Database: engine and session scope, ORM models, repositories (all queries live there), migrations."""
