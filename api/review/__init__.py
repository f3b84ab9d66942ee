"""The dermatologists' room: the review queue (claim, label, skip), taxonomy, agreement stats, suspects, exports and
the `/review` page with its vendored static files. May import pipelines and infra."""
