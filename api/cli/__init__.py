"""The `skintrouble` command line: one face of the product beside the HTTP API, calling the same services.

`main` holds the app and the commands that run the house (serve, worker, beat, up, migrate); `keys`, `analysis`
(check-quality, predict), `mlops` (retrain, models, dataset register) and `demo` register their commands on it;
`detector.cli` adds dataset, train and evaluate. May import pipelines and infra (lazily, inside commands, so
`--help` stays fast).
"""

from api.cli.main import app

__all__ = ["app"]
