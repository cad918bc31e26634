#!/bin/sh
# Write the client properties of the broker's `admin` user (SASL PLAIN over TLS on the INTERNAL
# listener) to $1, for Kafka's own tools (kafka-configs.sh, kafka-broker-api-versions.sh, ...):
#   sh admin-client.sh /tmp/admin.properties
#   /opt/kafka/bin/kafka-topics.sh --bootstrap-server kafka:9092 --command-config /tmp/admin.properties --list
# Needs $CAIRN_KAFKA_ADMIN_PASSWORD and the CA at /etc/kafka/tls/public/ca.pem (docker-compose.yml
# mounts both into the kafka and kafka-users containers).
set -eu
: "${1:?usage: admin-client.sh PROPERTIES_FILE}"
: "${CAIRN_KAFKA_ADMIN_PASSWORD:?CAIRN_KAFKA_ADMIN_PASSWORD is not set}"
umask 077
cat > "$1" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${CAIRN_KAFKA_ADMIN_PASSWORD}";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/tls/public/ca.pem
PROPERTIES
