#!/bin/sh
# Make the TLS material of the compose Kafka broker (docker-compose.yml) with openssl:
#
#   infra/kafka/tls/ca/ca.key          the CA's private key: keep it offline, mounted nowhere
#   infra/kafka/tls/public/ca.pem      the CA certificate: what every client trusts (mounted read-only
#                                      into the services at /etc/cairn/kafka/ca.pem)
#   infra/kafka/tls/broker/broker.p12  the broker's key and certificate (PKCS#12, mounted into kafka)
#
# The broker certificate names `kafka` (the compose network), `localhost` and $KAFKA_EXTERNAL_HOST
# (the EXTERNAL listener). The keystore password is $KAFKA_SSL_KEYSTORE_PASSWORD, read from the
# compose env file:
#
#   set -a; . infra/compose.env; set +a; sh infra/kafka/make-certs.sh
#
# An existing CA is reused (so clients keep trusting it); the broker certificate is made anew on
# every run (renewal: run again, then `docker compose restart kafka`). Days: $KAFKA_CERT_DAYS (825).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${KAFKA_TLS_DIR:-$here/tls}
days=${KAFKA_CERT_DAYS:-825}
external=${KAFKA_EXTERNAL_HOST:-localhost}
: "${KAFKA_SSL_KEYSTORE_PASSWORD:?set KAFKA_SSL_KEYSTORE_PASSWORD (infra/compose.env)}"

umask 077
mkdir -p "$out/ca" "$out/public" "$out/broker"

if [ ! -f "$out/ca/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
        -subj "/CN=cairn-kafka-ca" -keyout "$out/ca/ca.key" -out "$out/public/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
san="DNS:kafka,DNS:localhost,IP:127.0.0.1"
if [ "$external" != "localhost" ]; then
    case "$external" in
        *[!0-9.]*) san="$san,DNS:$external" ;;
        *) san="$san,IP:$external" ;;
    esac
fi
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -subj "/CN=kafka" \
    -keyout "$work/broker.key" -out "$work/broker.csr"
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$san" > "$work/ext.cnf"
openssl x509 -req -in "$work/broker.csr" -CA "$out/public/ca.pem" -CAkey "$out/ca/ca.key" \
    -CAcreateserial -CAserial "$out/ca/ca.srl" -days "$days" -sha256 -extfile "$work/ext.cnf" \
    -out "$work/broker.pem"
openssl pkcs12 -export -name kafka -inkey "$work/broker.key" -in "$work/broker.pem" \
    -certfile "$out/public/ca.pem" -passout env:KAFKA_SSL_KEYSTORE_PASSWORD \
    -out "$out/broker/broker.p12"
# the containers run as other users: the public CA and the keystore must be readable by them
chmod 755 "$out/public" "$out/broker"
chmod 644 "$out/public/ca.pem" "$out/broker/broker.p12"
echo "CA: $out/public/ca.pem; broker keystore: $out/broker/broker.p12 (names $san)"
