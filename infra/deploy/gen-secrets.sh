#!/usr/bin/env sh
# Write random secrets for compose.yaml into infra/deploy/secrets/ (ignored by git). Existing files are kept,
# so running it again never rotates a password under a running database; delete a file to regenerate it.
set -eu
cd "$(dirname "$0")/secrets"
umask 077
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
[ -f postgres_password ] || rand > postgres_password
[ -f redis_password ] || rand > redis_password
[ -f minio_root_password ] || rand > minio_root_password
[ -f metrics_token ] || rand > metrics_token
PG=$(cat postgres_password); RD=$(cat redis_password); S3=$(cat minio_root_password); MT=$(cat metrics_token)
[ -f minio.env ] || printf 'MINIO_ROOT_USER=skintrouble\nMINIO_ROOT_PASSWORD=%s\n' "$S3" > minio.env
[ -f app.env ] || cat > app.env <<ENV
DATABASE_URL=postgresql+psycopg://skintrouble:${PG}@postgres:5432/skintrouble
REDIS_URL=redis://:${RD}@redis:6379/0
AWS_ACCESS_KEY_ID=skintrouble
AWS_SECRET_ACCESS_KEY=${S3}
SKINTROUBLE_METRICS_TOKEN=${MT}
ENV
[ -f mlflow.env ] || cat > mlflow.env <<ENV
MLFLOW_BACKEND_STORE_URI=postgresql+psycopg://skintrouble:${PG}@postgres:5432/mlflow
AWS_ACCESS_KEY_ID=skintrouble
AWS_SECRET_ACCESS_KEY=${S3}
ENV
[ -f flower.env ] || cat > flower.env <<ENV
CELERY_BROKER_URL=redis://:${RD}@redis:6379/0
FLOWER_BASIC_AUTH=admin:$(rand)
ENV
echo "secrets in $(pwd)"
