"""`skintrouble up` trains on a worker of its own: a retrain never holds the worker that runs analyses."""

from __future__ import annotations

from api.cli.main import up_components


def test_training_has_its_own_worker() -> None:
    components = up_components("127.0.0.1", 8000)
    workers = [c for c in components if c[0] == "worker"]
    queues = [set(w[w.index("--queues") + 1].split(",")) for w in workers]
    assert queues == [{"analysis", "review"}, {"training"}]
    assert ["beat"] in components and ["serve", "--host", "127.0.0.1", "--port", "8000"] in components
