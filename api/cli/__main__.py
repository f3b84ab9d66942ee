"""`python -m api.cli`: what `up` starts its components with."""

from api.cli.main import app

app()
