#!/bin/sh
# The `kafka-users` job of docker-compose.yml: create or update the SCRAM-SHA-512 user of every
# Cairn service, `cairn-<service>`, with the password in $CAIRN_KAFKA_USER_<SERVICE>_PASSWORD
# (service name upper-cased, `-` as `_`), as the broker's `admin` user. Idempotent: running it
# again sets the passwords again (that is how a password is rotated: change it in the env file,
# rerun this job, restart the service).
#   usage: kafka-users.sh SERVICE...
set -eu
here=$(cd "$(dirname "$0")" && pwd)
props=/tmp/admin.properties
sh "$here/admin-client.sh" "$props"
bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
for service in "$@"; do
    var="CAIRN_KAFKA_USER_$(printf '%s' "$service" | tr 'a-z-' 'A-Z_')_PASSWORD"
    password=$(printenv "$var" || true)
    if [ -z "$password" ]; then
        echo "kafka-users: $var is not set" >&2
        exit 1
    fi
    case "$password" in
        *[!A-Za-z0-9._~-]*) echo "kafka-users: $var must use only letters, digits and - _ . ~" >&2; exit 1 ;;
    esac
    /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$bootstrap" --command-config "$props" --alter \
        --entity-type users --entity-name "cairn-$service" \
        --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
    echo "kafka-users: cairn-$service"
done
