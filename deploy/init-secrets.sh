#!/bin/sh
# Makes the secrets directory docker-compose.yml reads (deploy.secrets/ beside it, or $1):
#   postgres.env      POSTGRES_PASSWORD                      (the postgres service)
#   rabbitmq.env      RABBITMQ_DEFAULT_PASS                  (the rabbitmq service)
#   pouracquit.env    PGPASSWORD, CELERY_BROKER_URL          (scheduler, workers, admin, cli)
#   state_key         store.encryption_key: a Fernet key     (mounted at /run/secrets/state_key)
#   admin_token       admin.token                            (mounted at /run/secrets/admin_token)
#   tenants/<name>/   each company's secret files            (mounted at /run/secrets/tenants)
# An existing directory is left alone: a new state key would make every sealed token unreadable.
set -eu

dir="${1:-deploy.secrets}"
if [ -e "$dir" ]; then
    echo "$dir exists: left as it is" >&2
    exit 1
fi

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

umask 077
mkdir -p "$dir/tenants/example"
# git never sees this directory (the name *.secrets keeps it out of the image's build context)
echo '*' > "$dir/.gitignore"

db=$(hex 24)
broker=$(hex 24)
printf 'POSTGRES_PASSWORD=%s\n' "$db" > "$dir/postgres.env"
printf 'RABBITMQ_DEFAULT_PASS=%s\n' "$broker" > "$dir/rabbitmq.env"
# libpq reads PGPASSWORD; Celery prefers CELERY_BROKER_URL to [fleet] broker
printf 'PGPASSWORD=%s\nCELERY_BROKER_URL=amqp://pouracquit:%s@rabbitmq:5672//\n' "$db" "$broker" \
    > "$dir/pouracquit.env"

# a Fernet key is 32 random bytes in URL-safe base64, as `pouracquit keygen` prints it
head -c 32 /dev/urandom | base64 | tr '+/' '-_' > "$dir/state_key"
hex 32 > "$dir/admin_token"

# The containers run as uid 10001: the files they mount must be readable by it. Docker's
# daemon mounts them whatever the directory's own mode, which keeps other users of the host out.
chmod 0700 "$dir"
chmod 0755 "$dir/tenants" "$dir/tenants/example"
chmod 0644 "$dir/state_key" "$dir/admin_token"
if [ "$(id -u)" = 0 ]; then
    chown -R 10001 "$dir/tenants" "$dir/state_key" "$dir/admin_token"
    chmod 0400 "$dir/state_key" "$dir/admin_token"
    chmod 0700 "$dir/tenants" "$dir/tenants/example"
fi

echo "secrets written to $dir; put each company's files under $dir/tenants/<name>/"
echo "(deploy/tenants/example.toml names hubspot_access_token, quickbooks_client_secret, quickbooks_refresh_token)"
