"""Process-wide collaborators (settings, photo store, model provider, inference pool), built on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from infra.settings import Settings, get_settings
from infra.storage import PhotoStore, open_store
from pipelines.cases.inference_pool import InferencePool
from pipelines.mlops.model_provider import ModelProvider, Resolver


@dataclass
class Resources:
    settings: Settings
    store: PhotoStore
    models: ModelProvider
    pool: InferencePool


def build_resources(settings: Settings, resolver: Resolver | None = None) -> Resources:
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    models = ModelProvider(
        default_dir=settings.model_dir,
        cache_dir=settings.model_cache_dir,
        threads=settings.threads_per_slot,
        resolver=resolver,
        refresh_seconds=settings.model_refresh_seconds,
    )
    return Resources(settings=settings, store=store, models=models, pool=InferencePool(settings.analysis_slots))


def serving_resources(settings: Settings) -> Resources:
    """API and workers serve whatever holds the `release` alias in the registry (shipped model until then)."""
    if not settings.follow_registry:
        return build_resources(settings)
    from pipelines.mlops.release_follower import release_resolver

    return build_resources(settings, resolver=release_resolver(settings))


@lru_cache
def get_resources() -> Resources:
    return serving_resources(get_settings())
