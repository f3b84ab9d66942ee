"""Monitoring for operators: daily summaries computed from the database (aggregates over few cases withheld)."""
