#!/bin/sh
# One Ed25519 signing key pair per Cairn service and one for the operators' `cairn` CLI, for
# docker-compose.yml (docs/security-signing.md). Idempotent: existing keys are kept.
#
#   infra/signing/make-keys.sh [OUT_DIR]      # default: infra/signing
#
# OUT_DIR/private/<owner>.pem  the owner's private key (mode 600): each service gets only its own,
#                              as the compose secret `signing_key_<service>`
# OUT_DIR/trusted/<owner>.pub  the public keys, mounted read-only into every service
#                              (CAIRN_TRUSTED_KEYS_DIR); nothing secret
set -eu
out="${1:-$(dirname "$0")}"
mkdir -p "$out/private" "$out/trusted"
umask 077
for owner in prompt-store retriever inference safety tuner evaluator feedback audit gateway cli; do
  private="$out/private/$owner.pem"
  if [ ! -s "$private" ]; then
    openssl genpkey -algorithm ed25519 -out "$private"
    echo "made $private"
  fi
  openssl pkey -in "$private" -pubout -out "$out/trusted/$owner.pub"
  chmod 644 "$out/trusted/$owner.pub"
done
