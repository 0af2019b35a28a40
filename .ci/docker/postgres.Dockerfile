# Stand-in for postgres:*-trixie: Debian's PostgreSQL 17 (the compose file's major version) with an entrypoint that honours
# POSTGRES_USER, POSTGRES_PASSWORD(_FILE) and POSTGRES_DB like the official one, and
# PGDATA at /var/lib/postgresql/data. Built only by standin-images.sh.
ARG BASE
FROM ${BASE}
# The official images' postgres user and group, 999: the stack gives that group its password file.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-17 \
 && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/17/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
RUN mkdir -p "$PGDATA" /var/run/postgresql && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
