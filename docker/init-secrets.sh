#!/bin/sh
# Makes the secrets a TOM needs on its first start and keeps them in DIR (a volume), so that
# none is baked into the image or committed: SECRET_KEY for Django, a password for PostgreSQL.
# A POSTGRES_PASSWORD from the environment (.env) replaces the kept one. PostgreSQL takes a
# password only when it first creates its database: change it later with ALTER ROLE too.
# Run as root (compose does), it gives each file to who reads it and no one else: the TOM's
# user owns everything; the database's group (POSTGRES_GID, 999 in the official postgres
# images) may read the database password only. It also hands the backup folder
# (BACKUP_REPOSITORY, a bind mount of ./backups that Docker creates as root) and the folder of
# the generated backup passphrase (BACKUP_SECRETS_DIR, which web does not mount) to the TOM's
# user, moving a passphrase an older version generated in DIR there.
# Usage: init-secrets.sh [DIR]   (default /run/tom-secrets)
set -eu
dir=${1:-/run/tom-secrets}
mkdir -p "$dir"
umask 077

new_secret() {
    python3 -c 'import secrets; print(secrets.token_urlsafe(48))'
}

if [ ! -s "$dir/secret_key" ]; then
    new_secret >"$dir/secret_key.new" && mv "$dir/secret_key.new" "$dir/secret_key"
    echo "init-secrets: generated a Django SECRET_KEY in $dir/secret_key"
fi
if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" >"$dir/postgres_password.new"
    mv "$dir/postgres_password.new" "$dir/postgres_password"
elif [ ! -s "$dir/postgres_password" ]; then
    new_secret >"$dir/postgres_password.new" && mv "$dir/postgres_password.new" "$dir/postgres_password"
    echo "init-secrets: generated a PostgreSQL password in $dir/postgres_password"
fi
if [ "$(id -u)" != 0 ] || ! id tom >/dev/null 2>&1; then
    exit 0  # `make serve`: the files are this user's, 0600
fi

backup_dir=${BACKUP_SECRETS_DIR:-}
if [ -n "$backup_dir" ]; then
    mkdir -p "$backup_dir"
    if [ -s "$dir/backup_passphrase" ] && [ ! -s "$backup_dir/backup_passphrase" ]; then
        mv "$dir/backup_passphrase" "$backup_dir/backup_passphrase"
        echo "init-secrets: moved the generated backup passphrase to $backup_dir, where web cannot read it"
    fi
    chown -R tom:tom "$backup_dir"
    chmod -R u=rwX,go= "$backup_dir"
fi
backups=${BACKUP_REPOSITORY:-/backups}
if [ -d "$backups" ] && ! runuser -u tom -- test -w "$backups"; then
    chown tom:tom "$backups"
    echo "init-secrets: made $backups writable by the TOM's user (uid $(id -u tom))"
fi
chown -R tom:tom "$dir"
chmod -R u=rwX,go= "$dir"
# The database container reads its password as its own user: through its group, that file only.
postgres_gid=${POSTGRES_GID:-999}
chgrp "$postgres_gid" "$dir" "$dir/postgres_password"
chmod 0750 "$dir"
exec chmod 0640 "$dir/postgres_password"
