"""The ML engineers' room for models: versions, aliases, promotion through the gate, rollback (MLflow behind
`pipelines.mlops.registry`). May import pipelines and infra."""
