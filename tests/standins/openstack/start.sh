#!/usr/bin/env bash
# Start Sirocco's OpenStack stand-in: the real Keystone, Glance, Placement, Nova
# (API, conductor, scheduler, two computes on a fake virt driver) and Cinder (API,
# scheduler, volume on Cinder's own fake driver) on MariaDB and RabbitMQ, plus a small
# Neutron stand-in; everything on 127.0.0.1, no systemd.
#
#   tests/standins/openstack/start.sh            start, or confirm the running one answers
#   tests/standins/openstack/start.sh --restart  stop what runs and start afresh
#
# Databases and state are recreated on every start. Prints the Keystone URL on
# its last line; writes $SIROCCO_OPENSTACK_DIR/clouds.yaml (cloud "sirocco-standin")
# for the tests, and openrc beside it for a shell. Needs install.sh first.
#
# Environment: SIROCCO_OPENSTACK_DIR (state, default /var/tmp/sirocco-openstack),
# SIROCCO_OPENSTACK_VENV (default <repo>/.venv-openstack), SIROCCO_OPENSTACK_PORT
# (first of 10 consecutive ports; unset: the first free range of 17700, 17720, 17740, ...,
# recorded in $SIROCCO_OPENSTACK_DIR/port).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
VENV=${SIROCCO_OPENSTACK_VENV:-$repo/.venv-openstack}
STATE=${SIROCCO_OPENSTACK_DIR:-/var/tmp/sirocco-openstack}
# Ports: BASE+0..9. Unset SIROCCO_OPENSTACK_PORT: the running stand-in's recorded base for the
# check below, else the first free range from FIRST_BASE in steps of BASE_STEP (chosen further down).
FIRST_BASE=17700
BASE_STEP=20
NPORTS=10
if [[ -n "${SIROCCO_OPENSTACK_PORT:-}" ]]; then
    if ! [[ "$SIROCCO_OPENSTACK_PORT" =~ ^[1-9][0-9]{0,4}$ ]] || ((SIROCCO_OPENSTACK_PORT + NPORTS > 65536)); then
        echo "SIROCCO_OPENSTACK_PORT=$SIROCCO_OPENSTACK_PORT: not the first of $NPORTS free ports" >&2
        exit 1
    fi
    BASE=$SIROCCO_OPENSTACK_PORT
elif [[ "$(cat "$STATE/port" 2>/dev/null)" =~ ^[1-9][0-9]*$ ]]; then
    BASE=$(cat "$STATE/port")
else
    BASE=$FIRST_BASE
fi
# set_ports BASE: every port and URL from the base
set_ports() {
    BASE=$1
    KEYSTONE_PORT=$BASE
    GLANCE_PORT=$((BASE + 1))
    PLACEMENT_PORT=$((BASE + 2))
    NOVA_PORT=$((BASE + 3))
    NEUTRON_PORT=$((BASE + 4))
    MYSQL_PORT=$((BASE + 5))
    RABBIT_PORT=$((BASE + 6))
    RABBIT_DIST_PORT=$((BASE + 7))
    CINDER_PORT=$((BASE + 8))
    EPMD_PORT=$((BASE + 9))   # Erlang's port mapper, this stand-in's own (the machine's default is 4369)
    AUTH_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
}
set_ports "$BASE"
HYPERVISORS=2
T0=$EPOCHREALTIME

log() { printf 'openstack-standin [%5ss]: %s\n' "$(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $T0}")" "$*" >&2; }
die() { log "$*"; exit 1; }

if [[ ! -x "$VENV/bin/nova-manage" ]]; then
    die "no OpenStack venv at $VENV: run tests/standins/openstack/install.sh first"
fi
for bin in /usr/sbin/mariadbd /usr/bin/mariadb-install-db /usr/lib/rabbitmq/bin/rabbitmq-server; do
    [[ -x "$bin" ]] || die "$bin not found: run tests/standins/openstack/install.sh (as root) first"
done

# http_ok URL: true when URL answers 2xx/3xx (no curl on a minimal Debian)
http_ok() { "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$1"; }

# spawn NAME CMD...: run in its own session, output to log/NAME.log, PID in pids/NAME.pid
spawn() {
    local name=$1
    shift
    setsid "$@" >"$STATE/log/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name.pid"
}

# wait_for WHAT SECONDS CMD...: poll CMD every 0.2 s
wait_for() {
    local what=$1 limit=$2 i
    shift 2
    for ((i = 0; i < limit * 5; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    die "$what did not come up within ${limit}s; see $STATE/log/"
}

# Already running (on this base) and answering: nothing to do (unless --restart).
if [[ "${1:-}" != "--restart" && -f "$STATE/clouds.yaml" && -f "$STATE/ready" \
    && "$(cat "$STATE/port" 2>/dev/null)" == "$BASE" ]]; then
    alive=1
    for pidfile in "$STATE"/pids/*.pid; do
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { alive=0; break; }
    done
    if [[ $alive -eq 1 ]] && http_ok "$AUTH_URL"; then
        log "already running (state in $STATE)"
        echo "$AUTH_URL"
        exit 0
    fi
fi

bash "$here/stop.sh" >/dev/null 2>&1 || true
rm -rf "$STATE"
mkdir -p "$STATE"/{pids,log}
chmod 700 "$STATE"

# taken_port BASE: the first port of BASE..BASE+NPORTS-1 something answers on 127.0.0.1, or fails
taken_port() {
    local port
    for ((port = $1; port < $1 + NPORTS; port++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}
# claim BASE: hold the abstract Unix socket "sirocco-openstack-BASE" as long as the stand-in
# runs (a process of its own, stopped with the others). Abstract sockets belong to the network
# namespace, as ports do: another stand-in starting at the same time on this network (another
# root, another state directory) sees the claim before any of these ports listens.
claim() {
    spawn port-claim "$VENV/bin/python" -c 'if 1:
        import signal, socket, sys
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind("\0sirocco-openstack-" + sys.argv[1])
        except OSError as e:
            sys.exit("base %s is claimed by another stand-in: %s" % (sys.argv[1], e))
        print("claimed", flush=True)
        signal.pause()' "$1"
    local pid i
    pid=$(cat "$STATE/pids/port-claim.pid")
    for ((i = 0; i < 200; i++)); do
        grep -qx claimed "$STATE/log/port-claim.log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$STATE/pids/port-claim.pid"
    return 1
}
if [[ -n "${SIROCCO_OPENSTACK_PORT:-}" ]]; then
    if port=$(taken_port "$BASE"); then
        die "port $port is taken by another process: choose another SIROCCO_OPENSTACK_PORT (or unset it)"
    fi
    claim "$BASE" || die "SIROCCO_OPENSTACK_PORT=$BASE: $(cat "$STATE/log/port-claim.log")"
else
    for ((base = FIRST_BASE; ; base += BASE_STEP)); do
        ((base + NPORTS <= 65536)) || die "no free range of $NPORTS ports from $FIRST_BASE up"
        if ! taken_port "$base" >/dev/null && claim "$base"; then break; fi
    done
    set_ports "$base"
fi
echo "$BASE" >"$STATE/port"
log "ports $BASE-$((BASE + NPORTS - 1)) (Keystone on :$KEYSTONE_PORT)"

# The databases live in memory when /dev/shm is there (they are recreated on every start anyway),
# one directory per base.
MYSQL_DATA=$STATE/mysql
if [[ -d /dev/shm && -w /dev/shm ]]; then
    MYSQL_DATA=/dev/shm/sirocco-openstack-$BASE/mysql
fi
rm -rf "$MYSQL_DATA"
mkdir -p "$MYSQL_DATA" "$STATE"/{etc,rabbit,glance/images} "$STATE"/glance/{staging,tasks} \
    "$STATE"/keystone/{fernet-keys,fernet-receipt-keys,credential-keys} \
    "$STATE"/nova/{api,compute1,compute2,lock,provider_config} "$STATE"/cinder/lock
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
DB="mysql+pymysql://root:$PASSWORD@127.0.0.1:$MYSQL_PORT"
MQ="rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/"

# --- MariaDB and RabbitMQ --------------------------------------------------------
log "MariaDB on :$MYSQL_PORT, RabbitMQ on :$RABBIT_PORT (epmd on :$EPMD_PORT)"
echo "$MYSQL_DATA" >"$STATE/mysql-data"
mariadb-install-db --no-defaults --datadir="$MYSQL_DATA" --user=root --auth-root-authentication-method=normal \
    --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1
spawn mariadb /usr/sbin/mariadbd --no-defaults --datadir="$MYSQL_DATA" --user=root --innodb-flush-method=fsync \
    --socket="$STATE/mysql.sock" --port="$MYSQL_PORT" --bind-address=127.0.0.1 --pid-file="$STATE/mysql.pid" \
    --skip-name-resolve --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    --innodb-buffer-pool-size=128M --max-connections=500 --character-set-server=utf8mb4

# RabbitMQ as its own node, registered with an epmd of its own on EPMD_PORT (ERL_EPMD_PORT): the
# default one (4369) is shared by every Erlang node of the machine and outlives them. Started
# first and waited for, so that the node does not start a detached one itself.
spawn epmd /usr/bin/epmd -port "$EPMD_PORT" -address 127.0.0.1
mkdir -p "$STATE/rabbit/home"
echo "[]." >"$STATE/rabbit/enabled_plugins"
head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/rabbit/home/.erlang.cookie"
chmod 400 "$STATE/rabbit/home/.erlang.cookie"
RABBIT_NODE=sirocco$BASE@localhost
rabbit_env=(env HOME="$STATE/rabbit/home" ERL_EPMD_PORT="$EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_NODENAME="$RABBIT_NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$RABBIT_PORT" RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" RABBITMQ_MNESIA_BASE="$STATE/rabbit/mnesia"
    RABBITMQ_LOG_BASE="$STATE/rabbit/log" RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/rabbit/enabled_plugins"
    RABBITMQ_CONFIG_FILE="$STATE/rabbit/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$STATE/rabbit/advanced.config"
    RABBITMQ_PID_FILE="$STATE/rabbit/rabbit.pid" RABBITMQ_CONF_ENV_FILE="$STATE/rabbit/rabbitmq-env.conf"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
# AMQP and Erlang distribution on the loopback only: guest/guest may then log in from 127.0.0.1
# (loopback_users = none), and from nowhere else
printf 'loopback_users = none\nlisteners.tcp.default = 127.0.0.1:%s\n' "$RABBIT_PORT" >"$STATE/rabbit/rabbitmq.conf"
wait_for epmd 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$EPMD_PORT"
spawn rabbitmq "${rabbit_env[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server
mysql_ping() { mariadb-admin --no-defaults -uroot --socket="$STATE/mysql.sock" ping; }
wait_for MariaDB 60 mysql_ping
mariadb --no-defaults -uroot --socket="$STATE/mysql.sock" <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '$PASSWORD';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
SQL
log "MariaDB up"

# --- configuration -------------------------------------------------------------------
authtoken="[keystone_authtoken]
www_authenticate_uri = $AUTH_URL
auth_url = $AUTH_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = admin
username = admin
password = $PASSWORD
service_token_roles_required = true"
# Nova and Placement reach the other services as the admin user through the catalog.
service_auth() {
    printf '[%s]\nauth_type = password\nauth_url = %s\nproject_domain_name = Default\nuser_domain_name = Default\n' "$1" "$AUTH_URL"
    printf 'project_name = admin\nusername = admin\npassword = %s\nregion_name = RegionOne\n' "$PASSWORD"
}

mkdir -p "$STATE/etc"/{keystone,glance,placement,nova,cinder}
cat >"$STATE/etc/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $STATE/log/keystone-app.log
[database]
connection = $DB/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
# the receipts (multi-factor auth) have their own keys; their default repository is in /etc
[fernet_receipts]
key_repository = $STATE/keystone/fernet-receipt-keys
[credential]
key_repository = $STATE/keystone/credential-keys
# an in-process cache: without one each token validation runs ~450 SQL queries
[cache]
enabled = true
backend = oslo_cache.dict
expiration_time = 600
[identity]
# every token request checks the password: the cheapest bcrypt cost keeps that fast
password_hash_rounds = 4
EOF

cat >"$STATE/etc/glance/glance-api.conf" <<EOF
[DEFAULT]
log_file = $STATE/log/glance-app.log
enabled_backends = file:file
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = $STATE/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $STATE/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $STATE/glance/tasks
[database]
connection = $DB/glance
[paste_deploy]
flavor = keystone
config_file = $STATE/etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $STATE/glance
$authtoken
EOF
cp "$VENV/etc/glance/glance-api-paste.ini" "$STATE/etc/glance/"

cat >"$STATE/etc/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $STATE/log/placement-app.log
[placement_database]
connection = $DB/placement
[api]
auth_strategy = keystone
$authtoken
EOF

nova_conf() {   # nova_conf HOST STATE_PATH
    cat <<EOF
[DEFAULT]
host = $1
state_path = $2
my_ip = 127.0.0.1
transport_url = $MQ
compute_driver = sirocco_fakevirt.SnapshotFakeDriver
# no Neutron agent behind the stand-in: nothing to refresh, no VIF events to wait for
heal_instance_info_cache_interval = -1
vif_plugging_timeout = 0
vif_plugging_is_fatal = false
instance_usage_audit = false
# stop.sh ends the services: no minute-long graceful shutdown
graceful_shutdown_timeout = 1
# periodic tasks (the scheduler maps new computes with one) start at once, not up to 60 s later
periodic_fuzzy_delay = 0
# the fake driver powers guests off at once
shutdown_timeout = 0
[api]
auth_strategy = keystone
[compute]
# none (the default directory is /etc/nova/provider_config/)
provider_config_location = $STATE/nova/provider_config/
[wsgi]
api_paste_config = $STATE/etc/nova/api-paste.ini
[api_database]
connection = $DB/nova_api
[database]
connection = $DB/nova
[oslo_concurrency]
lock_path = $STATE/nova/lock
[oslo_messaging_notifications]
driver = noop
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0
[scheduler]
workers = 1
# map new computes to cell1 every 2 s (what nova-manage cell_v2 discover_hosts does)
discover_hosts_in_cells_interval = 2
[conductor]
workers = 1
[vnc]
enabled = false
[spice]
enabled = false
$(service_auth cinder)
os_region_name = RegionOne
# Cinder lets only a service (a token with role service beside the user's) delete the
# attachment of a server: Nova sends one with its calls
$(service_auth service_user)
send_service_user_token = true
$(service_auth placement)
$(service_auth neutron)
$(service_auth glance)
$authtoken
EOF
}
cp "$VENV/etc/nova/api-paste.ini" "$STATE/etc/nova/"
nova_conf nova-api "$STATE/nova/api" >"$STATE/etc/nova/nova.conf"
nova_conf compute1 "$STATE/nova/compute1" >"$STATE/etc/nova/compute1.conf"
nova_conf compute2 "$STATE/nova/compute2" >"$STATE/etc/nova/compute2.conf"

# Cinder: one backend on Cinder's own fake driver (shipped in its package, cinder/tests/):
# volumes, exports and connections exist in Cinder's database only, no LVM, no iSCSI.
cat >"$STATE/etc/cinder/cinder.conf" <<EOF
[DEFAULT]
log_file = $STATE/log/cinder-app.log
host = cinder
my_ip = 127.0.0.1
state_path = $STATE/cinder
transport_url = $MQ
auth_strategy = keystone
api_paste_config = $STATE/etc/cinder/api-paste.ini
enabled_backends = fake
[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
[database]
connection = $DB/cinder
[oslo_concurrency]
lock_path = $STATE/cinder/lock
[oslo_messaging_notifications]
driver = noop
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0
$(service_auth nova)
$authtoken
EOF
cp "$VENV/etc/cinder/api-paste.ini" "$STATE/etc/cinder/"
CINDER_CONF=(--config-file "$STATE/etc/cinder/cinder.conf")

# --- schemas: migrated once per installed venv, then reloaded from a dump -----------------
# Running every service's migrations takes ~50 s on two cores; their result only
# depends on the installed versions, so the first start dumps it next to the venv
# and later starts load that dump into the fresh databases (~2 s).
SCHEMA_DBS=(keystone glance placement nova_api nova nova_cell0 cinder)
SCHEMA_CACHE="$VENV/.sirocco-schemas-$(cksum <"$here/constraints.txt" | cut -d' ' -f1).sql"
NOVA_MANAGE=("$VENV/bin/nova-manage" --config-file "$STATE/etc/nova/nova.conf")
mysql_root() { mariadb --no-defaults -uroot -p"$PASSWORD" --socket="$STATE/mysql.sock" "$@"; }
if [[ -s "$SCHEMA_CACHE" ]]; then
    log "loading schemas from $SCHEMA_CACHE"
    mysql_root <"$SCHEMA_CACHE"
    # the cell mappings name the database and message bus URLs, which carry this start's password
    mysql_root nova_api <<SQL
UPDATE cell_mappings SET database_connection = '$DB/nova_cell0', transport_url = 'none:///' WHERE name = 'cell0';
UPDATE cell_mappings SET database_connection = '$DB/nova', transport_url = '$MQ' WHERE name = 'cell1';
SQL
else
    log "running the schema migrations (first start with these versions)"
    mysql_root -e "CREATE DATABASE keystone; CREATE DATABASE glance; CREATE DATABASE placement;
        CREATE DATABASE nova_api; CREATE DATABASE nova; CREATE DATABASE nova_cell0; CREATE DATABASE cinder;"
    "$VENV/bin/keystone-manage" --config-file "$STATE/etc/keystone/keystone.conf" db_sync \
        >"$STATE/log/keystone-manage.log" 2>&1 &
    keystone_job=$!
    "$VENV/bin/glance-manage" --config-dir "$STATE/etc/glance" db_sync >"$STATE/log/glance-manage.log" 2>&1 &
    glance_job=$!
    OS_PLACEMENT_CONFIG_DIR="$STATE/etc/placement" "$VENV/bin/placement-manage" \
        --config-dir "$STATE/etc/placement" db sync >"$STATE/log/placement-manage.log" 2>&1 &
    placement_job=$!
    (
        "${NOVA_MANAGE[@]}" api_db sync
        "${NOVA_MANAGE[@]}" cell_v2 map_cell0 --database_connection "$DB/nova_cell0"
        "${NOVA_MANAGE[@]}" cell_v2 create_cell --name cell1 --verbose
        "${NOVA_MANAGE[@]}" db sync
    ) >"$STATE/log/nova-manage.log" 2>&1 &
    nova_job=$!
    "$VENV/bin/cinder-manage" "${CINDER_CONF[@]}" db sync >"$STATE/log/cinder-manage.log" 2>&1 &
    cinder_job=$!
    wait "$keystone_job" || die "keystone-manage db_sync failed; see $STATE/log/keystone-manage.log"
    wait "$glance_job" || die "glance-manage db_sync failed; see $STATE/log/glance-manage.log"
    wait "$placement_job" || die "placement-manage db sync failed; see $STATE/log/placement-manage.log"
    wait "$nova_job" || die "nova-manage failed; see $STATE/log/nova-manage.log"
    wait "$cinder_job" || die "cinder-manage db sync failed; see $STATE/log/cinder-manage.log"
    mariadb-dump --no-defaults -uroot -p"$PASSWORD" --socket="$STATE/mysql.sock" --skip-dump-date \
        --databases "${SCHEMA_DBS[@]}" >"$SCHEMA_CACHE.tmp"
    mv "$SCHEMA_CACHE.tmp" "$SCHEMA_CACHE"
    log "schemas migrated and saved to $SCHEMA_CACHE"
fi

# --- Keystone: keys and bootstrap (admin project, user, role; identity endpoints) ------------
# The key repositories (tokens, receipts, credentials) hold Fernet keys ("0" staged, "1"
# primary), as keystone-manage fernet_setup / credential_setup write them.
for key_dir in fernet-keys fernet-receipt-keys credential-keys; do
    for key in 0 1; do
        "$VENV/bin/python" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode(), end="")' \
            >"$STATE/keystone/$key_dir/$key"
    done
    chmod 700 "$STATE/keystone/$key_dir"
    chmod 600 "$STATE/keystone/$key_dir"/*
done
"$VENV/bin/keystone-manage" --config-file "$STATE/etc/keystone/keystone.conf" bootstrap \
    --bootstrap-password "$PASSWORD" --bootstrap-username admin --bootstrap-project-name admin \
    --bootstrap-role-name admin --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$AUTH_URL" --bootstrap-public-url "$AUTH_URL" --bootstrap-internal-url "$AUTH_URL" \
    >>"$STATE/log/keystone-manage.log" 2>&1 &
bootstrap_job=$!

# --- the services ----------------------------------------------------------------------------
# gunicorn_service NAME PORT WSGI_MODULE [ENV=VALUE...]: one worker, a few threads. No control
# socket: gunicorn's default one is $HOME/.gunicorn/gunicorn.ctl, one path that each new gunicorn
# of the user takes over (unlinks) from the previous one.
gunicorn_service() {
    local name=$1 port=$2 module=$3
    shift 3
    spawn "$name" env SIROCCO_WSGI_MODULE="$module" "$@" "$VENV/bin/gunicorn" --chdir "$here" \
        --bind "127.0.0.1:$port" --workers 1 --threads 8 --timeout 300 --graceful-timeout 2 \
        --no-control-socket --access-logfile "$STATE/log/$name-access.log" wsgi:application
}
log "starting Keystone, Glance, Placement, Nova API, Cinder API, Neutron stand-in"
gunicorn_service keystone "$KEYSTONE_PORT" keystone.wsgi.api OS_KEYSTONE_CONFIG_DIR="$STATE/etc/keystone"
gunicorn_service glance "$GLANCE_PORT" glance.wsgi.api OS_GLANCE_CONFIG_DIR="$STATE/etc/glance"
gunicorn_service placement "$PLACEMENT_PORT" placement.wsgi.api OS_PLACEMENT_CONFIG_DIR="$STATE/etc/placement"
gunicorn_service nova-api "$NOVA_PORT" nova.wsgi.osapi_compute OS_NOVA_CONFIG_DIR="$STATE/etc/nova"
gunicorn_service cinder-api "$CINDER_PORT" cinder.wsgi.api SIROCCO_WSGI_ARGS="${CINDER_CONF[*]}"
spawn neutron "$VENV/bin/gunicorn" --chdir "$here" --bind "127.0.0.1:$NEUTRON_PORT" --workers 1 --threads 4 \
    --no-control-socket --access-logfile "$STATE/log/neutron-access.log" neutron_standin:application

wait "$bootstrap_job" || die "keystone-manage bootstrap failed; see $STATE/log/keystone-manage.log"
cat >"$STATE/clouds.yaml" <<CLOUDS
# Written by tests/standins/openstack/start.sh: the OpenStack stand-in's admin account.
clouds:
  sirocco-standin:
    auth:
      auth_url: $AUTH_URL
      username: admin
      password: "$PASSWORD"
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
CLOUDS
chmod 600 "$STATE/clouds.yaml"
echo "export OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml OS_CLOUD=sirocco-standin" >"$STATE/openrc"
export OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml OS_CLOUD=sirocco-standin
wait_for Keystone 90 http_ok "$AUTH_URL"
log "Keystone up; registering the other services' endpoints"
# Placement must be in the catalog before the computes report their inventories.
"$VENV/bin/python" "$here/bootstrap.py" catalog \
    --endpoint "image=http://127.0.0.1:$GLANCE_PORT" \
    --endpoint "placement=http://127.0.0.1:$PLACEMENT_PORT" \
    --endpoint "compute=http://127.0.0.1:$NOVA_PORT/v2.1" \
    --endpoint "network=http://127.0.0.1:$NEUTRON_PORT" \
    --endpoint "volumev3=http://127.0.0.1:$CINDER_PORT/v3/%(project_id)s" >>"$STATE/log/bootstrap.log" 2>&1 \
    || die "bootstrap catalog failed; see $STATE/log/bootstrap.log"

# The conductor and scheduler log in to Keystone as they start (with the admin account
# bootstrapped above); the computes ask the conductor for their service record at once.
wait_for RabbitMQ 90 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RABBIT_PORT"
log "starting nova-conductor, nova-scheduler, cinder-scheduler, cinder-volume"
spawn nova-conductor "$VENV/bin/nova-conductor" --config-file "$STATE/etc/nova/nova.conf"
spawn nova-scheduler "$VENV/bin/nova-scheduler" --config-file "$STATE/etc/nova/nova.conf"
spawn cinder-scheduler "$VENV/bin/cinder-scheduler" "${CINDER_CONF[@]}"
spawn cinder-volume "$VENV/bin/cinder-volume" "${CINDER_CONF[@]}"
wait_for nova-conductor 90 grep -q "Starting conductor node" "$STATE/log/nova-conductor.log"
for i in $(seq "$HYPERVISORS"); do
    spawn "nova-compute$i" "$VENV/bin/python" "$here/compute.py" --config-file "$STATE/etc/nova/compute$i.conf"
done

log "flavors and image; waiting for $HYPERVISORS hypervisors and cinder-volume"
"$VENV/bin/python" "$here/bootstrap.py" content --hypervisors "$HYPERVISORS" >>"$STATE/log/bootstrap.log" 2>&1 \
    || die "bootstrap failed; see $STATE/log/bootstrap.log"
touch "$STATE/ready"
log "ready: clouds.yaml in $STATE (cloud sirocco-standin)"
echo "$AUTH_URL"
