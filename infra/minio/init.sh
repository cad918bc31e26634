#!/bin/sh
# One-shot MinIO bootstrap run by the `minio-init` job of docker-compose.yml (image: minio/mc).
# Creates the Cairn bucket (versioned: datasets and adapters keep their history) and a non-root
# user for the services with the built-in `readwrite` policy. Idempotent.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${CAIRN_S3_ACCESS_KEY:?}" "${CAIRN_S3_SECRET_KEY:?}"
BUCKET="${CAIRN_S3_BUCKET:-cairn}"
ENDPOINT="${MINIO_ENDPOINT:-http://minio:9000}"

mc alias set cairn "$ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "cairn/$BUCKET"
mc version enable "cairn/$BUCKET"

# `mc admin user add` updates the secret of an existing user; attaching a policy twice is an error,
# so attach only when missing (plain sh pattern matching: the mc image has no grep to rely on).
mc admin user add cairn "$CAIRN_S3_ACCESS_KEY" "$CAIRN_S3_SECRET_KEY"
case "$(mc admin user info cairn "$CAIRN_S3_ACCESS_KEY" --json)" in
  *'"readwrite"'*) ;;
  *) mc admin policy attach cairn readwrite --user "$CAIRN_S3_ACCESS_KEY" ;;
esac
echo "minio-init: bucket $BUCKET ready for $CAIRN_S3_ACCESS_KEY"
