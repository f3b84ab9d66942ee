"""The ML engineers' room for models: versions, aliases, promotion through the gate, rollback (MLflow behind
`pipelines.model_registry`). May import pipelines and infra."""
