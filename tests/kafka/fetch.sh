#!/bin/sh
# Fetches the tests' Kafka broker (tests/kafka_broker.py): Apache Kafka 4.4's jars and their
# dependencies from Maven (tests/kafka/pom.xml), by Debian's `mvn`, into the user's cache
# folder, once per version of the pom. It runs on Java 17 as `java -cp 'lib/*' kafka.Kafka`.
# Prints the folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mytom/kafka
version=$(cat "$0" "$here/pom.xml" | sha256sum | cut -c1-12)
broker=$cache/broker-$version
if [ ! -d "$broker/lib" ]; then
    rm -rf "$broker.partial"
    mkdir -p "$broker.partial"
    # Maven's own downloads are kept beside the jars' cache, not in ~/.m2, and dropped after.
    mvn -q -B -f "$here/pom.xml" -Dmaven.repo.local="$broker.partial/m2" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$broker.partial/lib"
    rm -rf "$broker.partial/m2"
    mv "$broker.partial" "$broker"
    find "$cache" -maxdepth 1 -name 'broker-*' ! -path "$broker" -exec rm -rf {} +
fi
exec echo "$broker"
