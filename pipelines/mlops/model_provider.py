"""The detector a process serves, swapped without restart when a new release appears.

The default source is the shipped model in `detector/weights/`; the registry module plugs in a resolver that
returns the folder of the current `release` alias. A failing resolver (MLflow down) keeps the loaded model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from detector.onnx_runtime import Detector

log = logging.getLogger(__name__)
Resolver = Callable[[], Path | None]


class ModelProvider:
    def __init__(
        self,
        *,
        default_dir: Path,
        cache_dir: Path,
        threads: int | None = None,
        resolver: Resolver | None = None,
        refresh_seconds: float = 30.0,
    ) -> None:
        self.default_dir = default_dir
        self.cache_dir = cache_dir
        self.threads = threads
        self.resolver = resolver
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._detector: Detector | None = None
        self._source: Path | None = None
        self._checked_at = 0.0
        self._refreshing = threading.Event()

    def get(self) -> Detector:
        """The current detector. The first call loads it; later, at most every `refresh_seconds`, a background
        thread asks the resolver for a new release, so a slow or dead registry never delays a request."""
        if self._detector is None:
            self.refresh()
        elif time.monotonic() - self._checked_at >= self.refresh_seconds and not self._refreshing.is_set():
            self._refreshing.set()
            threading.Thread(target=self._refresh_in_background, name="model-refresh", daemon=True).start()
        assert self._detector is not None
        return self._detector

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # a broken new release must not take the served one down
            log.error("could not load the new model, keeping the current one: %s", exc)
        finally:
            self._refreshing.clear()

    @property
    def loaded(self) -> bool:
        return self._detector is not None

    def refresh(self) -> bool:
        """Load the resolved model if it changed; returns True when a new model was loaded."""
        with self._lock:
            self._checked_at = time.monotonic()
            target = self.default_dir
            if self.resolver is not None:
                try:
                    target = self.resolver() or self.default_dir
                except Exception as exc:  # registry unreachable: keep serving what we have
                    log.warning("model resolver failed, keeping the loaded model: %s", type(exc).__name__)
                    if self._detector is not None:
                        return False
            if self._detector is not None and target == self._source:
                return False
            detector = Detector.load(target, self.cache_dir, threads=self.threads)
            self._detector, self._source = detector, target
            log.info("serving model %s", detector.version)
            return True
