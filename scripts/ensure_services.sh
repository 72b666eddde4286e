#!/usr/bin/env bash
# Make sure PostgreSQL and Redis are reachable for the tests and the demo.
#
#   eval "$(scripts/ensure_services.sh)"     # prints only `export VAR='value'` lines on stdout
#   scripts/ensure_services.sh --stop        # stops the project-local instances (if running)
#
# Inputs: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/mh1) and
#         REDIS_URL    (default redis://127.0.0.1:6379/0).
#
# For each service: if a server answers at the URL's host/port it is used as is. Otherwise a
# project-local instance is reused or started under <repo>/.local (PostgreSQL cluster in
# .local/pgdata, log .local/pg.log; Redis with .local/redis.{log,pid}), on the URL's port when that
# port is free, else on 55432 / 56379 (or the next free port after those). The database named in
# DATABASE_URL is created if it does not exist.
#
# All progress messages go to stderr. If this script fails it prints nothing on stdout and exits
# non-zero; note that `eval "$(...)"` alone does not propagate that status.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
LOCAL_DIR=$REPO_ROOT/.local
PGDATA_DIR=$LOCAL_DIR/pgdata
PG_LOG=$LOCAL_DIR/pg.log
REDIS_LOG=$LOCAL_DIR/redis.log
REDIS_PIDFILE=$LOCAL_DIR/redis.pid
REDIS_PORTFILE=$LOCAL_DIR/redis.port
LOCK_DIR=$LOCAL_DIR/.lock

DEFAULT_DATABASE_URL='postgres://postgres@127.0.0.1:5432/mh1'
DEFAULT_REDIS_URL='redis://127.0.0.1:6379/0'
PG_FALLBACK_PORT=55432
REDIS_FALLBACK_PORT=56379
WAIT_SECS=20

# Everything written to stdout by commands below ends up on stderr; exports go to fd 3.
exec 3>&1 1>&2

log() { printf '%s\n' "$*" >&2; }
die() {
    log "ensure_services: ERROR: $*"
    exit 1
}

# Quote a value for the shell: abc'd -> 'abc'\''d'
shquote() {
    local s=$1 q="'\\''"
    printf "'%s'" "${s//\'/$q}"
}

emit_export() { printf 'export %s=%s\n' "$1" "$(shquote "$2")" >&3; }

# --------------------------------------------------------------------------------------------
# URL parsing: sets U_SCHEME U_AUTH (userinfo@host:port) U_USERINFO U_HOST U_PORT U_PATH U_QUERY
# --------------------------------------------------------------------------------------------
parse_url() {
    local url=$1 rest hostport
    [[ $url == *://* ]] || return 1
    U_SCHEME=${url%%://*}
    rest=${url#*://}
    U_QUERY=
    if [[ $rest == *\?* ]]; then
        U_QUERY=${rest#*\?}
        rest=${rest%%\?*}
    fi
    U_PATH=
    if [[ $rest == */* ]]; then
        U_PATH=${rest#*/}
        rest=${rest%%/*}
    fi
    U_AUTH=$rest
    U_USERINFO=
    if [[ $rest == *@* ]]; then
        U_USERINFO=${rest%@*}
        rest=${rest##*@}
    fi
    hostport=$rest
    U_PORT=
    if [[ $hostport == \[*\]* ]]; then # [ipv6]:port
        U_HOST=${hostport%%]*}
        U_HOST=${U_HOST#\[}
        hostport=${hostport#*]}
        U_PORT=${hostport#:}
    else
        U_HOST=${hostport%%:*}
        if [[ $hostport == *:* ]]; then U_PORT=${hostport#*:}; fi
    fi
    return 0
}

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

# tcp_open HOST PORT: something accepts TCP connections there.
tcp_open() {
    # shellcheck disable=SC2016  # $0/$1 are expanded by the inner bash
    timeout 3 bash -c 'exec 9<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

port_free() { ! tcp_open 127.0.0.1 "$1"; }

# pick_port PREFERRED FALLBACK: PREFERRED if free, else the first free port from FALLBACK on.
pick_port() {
    local p
    if port_free "$1"; then
        echo "$1"
        return 0
    fi
    for ((p = $2; p < $2 + 20; p++)); do
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

pid_alive() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    if [[ -d /proc/self ]]; then
        [[ -d /proc/$pid ]]
    else
        kill -0 "$pid" 2>/dev/null
    fi
}

# pid_comm_matches PID PATTERN: process name matches (assumed true when /proc is unavailable).
pid_comm_matches() {
    local comm
    [[ -r /proc/$1/comm ]] || return 0
    comm=$(cat "/proc/$1/comm" 2>/dev/null || true)
    # shellcheck disable=SC2053  # glob match intended
    [[ $comm == $2 ]]
}

is_root() { [[ $(id -u) -eq 0 ]]; }

APT_UPDATED=0
# apt_install PKG...: best effort, only as root with apt-get.
apt_install() {
    is_root || return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    log "Installing $* with apt-get ..."
    if [[ $APT_UPDATED -eq 0 ]]; then
        APT_UPDATED=1
        DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2 3>&- || log "apt-get update failed"
    fi
    # 3>&-: a service started by a postinst script must not hold our stdout pipe open.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >&2 3>&-
}

LOCK_HELD=0
release_lock() {
    if [[ $LOCK_HELD -eq 1 ]]; then
        rm -rf -- "$LOCK_DIR"
        LOCK_HELD=0
    fi
}

# Serialise runs that may start local instances (e.g. `make -j`).
acquire_lock() {
    local waited=0 owner
    [[ $LOCK_HELD -eq 0 ]] || return 0
    mkdir -p -- "$LOCAL_DIR"
    until mkdir -- "$LOCK_DIR" 2>/dev/null; do
        owner=$(cat "$LOCK_DIR/pid" 2>/dev/null || true)
        if [[ -n $owner ]] && ! pid_alive "$owner"; then
            rm -rf -- "$LOCK_DIR"
            continue
        fi
        if [[ $waited -eq 0 ]]; then log "Waiting for another ensure_services.sh run (lock $LOCK_DIR) ..."; fi
        if [[ $waited -ge 240 ]]; then
            die "timed out waiting for lock $LOCK_DIR; remove it if no other ensure_services.sh is running"
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    echo "$$" >"$LOCK_DIR/pid"
    LOCK_HELD=1
    trap release_lock EXIT
}

# --------------------------------------------------------------------------------------------
# Python helpers (project venv preferred; psycopg 3 / redis-py)
# --------------------------------------------------------------------------------------------
PY_PG=
PY_REDIS=
find_python() {
    local cand
    for cand in "$REPO_ROOT/.venv/bin/python" python3; do
        if [[ $cand == */* ]]; then
            [[ -x $cand ]] || continue
        else
            command -v "$cand" >/dev/null 2>&1 || continue
        fi
        if [[ -z $PY_PG ]] && "$cand" -c 'import psycopg' >/dev/null 2>&1; then PY_PG=$cand; fi
        if [[ -z $PY_REDIS ]] && "$cand" -c 'import redis' >/dev/null 2>&1; then PY_REDIS=$cand; fi
    done
    return 0
}

# argv: MODE URL [ADMIN_URL]
#   check   : connect to the maintenance database; exit 0 on success
#   prepare : (with ADMIN_URL) create the URL's role if missing, give it CREATEDB; then create the
#             URL's database if missing. Exit 3 if the role cannot CREATE DATABASE.
PG_PY=$(
    cat <<'PYEOF'
import sys
import psycopg
from psycopg import errors, sql


def connect(conninfo, dbname):
    try:
        return psycopg.connect(conninfo, dbname=dbname, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        if dbname == "postgres" and 'database "postgres" does not exist' in str(exc):
            return psycopg.connect(conninfo, dbname="template1", connect_timeout=3, autocommit=True)
        raise


def main():
    mode, url = sys.argv[1], sys.argv[2]
    admin_url = sys.argv[3] if len(sys.argv) > 3 else ""
    params = psycopg.conninfo.conninfo_to_dict(url)
    if mode == "check":
        connect(url, "postgres").close()
        return 0
    if admin_url:
        user = params.get("user") or "postgres"
        with connect(admin_url, "postgres") as conn:
            row = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = %s", (user,)
            ).fetchone()
            if row is None:
                query = sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(user))
                if params.get("password"):
                    query += sql.SQL(" PASSWORD {}").format(sql.Literal(params["password"]))
                conn.execute(query)
                print(f"PostgreSQL: created role {user} (LOGIN CREATEDB)", file=sys.stderr)
            elif not row[0]:
                conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(user)))
                print(f"PostgreSQL: granted CREATEDB to role {user}", file=sys.stderr)
    with connect(url, "postgres") as conn:
        user, can_create = conn.execute(
            "SELECT current_user::text, rolcreatedb OR rolsuper FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        dbname = params.get("dbname") or user
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            print(f"PostgreSQL: database {dbname} exists", file=sys.stderr)
        else:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                print(f"PostgreSQL: created database {dbname}", file=sys.stderr)
            except errors.DuplicateDatabase:
                pass
    connect(url, dbname).close()
    if not can_create:
        print(
            f"PostgreSQL: WARNING: role {user} cannot CREATE DATABASE; the tests need it"
            f" (ALTER ROLE {user} CREATEDB)",
            file=sys.stderr,
        )
        return 3
    return 0


try:
    sys.exit(main())
except psycopg.Error as exc:
    print(str(exc).strip(), file=sys.stderr)
    sys.exit(1)
PYEOF
)

REDIS_PY=$(
    cat <<'PYEOF'
import sys
import redis

try:
    ok = redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3, socket_timeout=3).ping()
except Exception as exc:  # noqa: BLE001
    print(str(exc).strip(), file=sys.stderr)
    sys.exit(1)
sys.exit(0 if ok else 1)
PYEOF
)

# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------
PG_BIN= # directory holding initdb/pg_ctl (found lazily)
PG_RUN_USER= # user running initdb/pg_ctl; empty = current user

# psql to use as a fallback when psycopg is unavailable
find_psql() {
    if [[ -n $PG_BIN && -x $PG_BIN/psql ]]; then
        echo "$PG_BIN/psql"
    else
        command -v psql 2>/dev/null || true
    fi
}

# maint_url URL: same URL pointing at the "postgres" database (for psql).
maint_url() {
    parse_url "$1"
    printf '%s://%s/postgres%s' "$U_SCHEME" "$U_AUTH" "${U_QUERY:+?$U_QUERY}"
}

# pg_probe URL: 0 usable, 1 nothing answers, 2 something answers but we cannot use it (PROBE_ERR).
PROBE_ERR=
pg_probe() {
    local url=$1 host port psql_bin
    PROBE_ERR=
    parse_url "$url"
    host=$U_HOST
    port=${U_PORT:-5432}
    if [[ -n $host && $host != /* && $host != %2F* ]]; then
        tcp_open "$host" "$port" || return 1
    fi
    if [[ -n $PY_PG ]]; then
        PROBE_ERR=$("$PY_PG" -c "$PG_PY" check "$url" 2>&1) && return 0
    else
        psql_bin=$(find_psql)
        if [[ -n $psql_bin ]]; then
            PROBE_ERR=$(PGCONNECT_TIMEOUT=3 "$psql_bin" -X -A -t -q -c 'SELECT 1' "$(maint_url "$url")" 2>&1 >/dev/null) && return 0
        elif [[ -n $host && $host != /* ]]; then
            return 0 # no client available: an open port is the best we can check
        fi
    fi
    [[ -n $host && $host != /* ]] && return 2
    return 1
}

# pg_prepare URL [ADMIN_URL]: create role (local cluster only) and database; verify.
pg_prepare() {
    local url=$1 admin=${2:-} rc=0 psql_bin db
    if [[ -n $PY_PG ]]; then
        "$PY_PG" -c "$PG_PY" prepare "$url" "$admin" || rc=$?
        case $rc in
            0 | 3) return 0 ;;
            *) die "PostgreSQL: could not prepare database for $url" ;;
        esac
    fi
    psql_bin=$(find_psql)
    if [[ -z $psql_bin ]]; then
        log "PostgreSQL: WARNING: neither psycopg (.venv) nor psql available; not creating the database"
        return 0
    fi
    parse_url "$url"
    db=${U_PATH:-postgres}
    if [[ -n $admin && -n $U_USERINFO && ${U_USERINFO%%:*} != postgres ]]; then
        # shellcheck disable=SC2016  # psql variables, not shell
        printf '%s\n' "SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'u') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'u') \\gexec" |
            PGCONNECT_TIMEOUT=3 "$psql_bin" -X -q -v ON_ERROR_STOP=1 -v u="${U_USERINFO%%:*}" "$(maint_url "$admin")" >&2 ||
            die "PostgreSQL: could not create role ${U_USERINFO%%:*}"
    fi
    # shellcheck disable=SC2016  # psql variables, not shell
    printf '%s\n' "SELECT format('CREATE DATABASE %I', :'d') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'d') \\gexec" |
        PGCONNECT_TIMEOUT=3 "$psql_bin" -X -q -v ON_ERROR_STOP=1 -v d="$db" "$(maint_url "$url")" >&2 ||
        die "PostgreSQL: could not create database $db"
    log "PostgreSQL: database $db present"
}

# Locate initdb/pg_ctl: highest /usr/lib/postgresql/<ver>/bin (matching an existing cluster's
# version when possible), then PATH. Sets PG_BIN; returns 1 if none found, 2 on version mismatch
# (PG_BIN_ERR).
PG_BIN_ERR=
find_pg_bin() {
    local want='' d candidates=() p
    if [[ -f $PGDATA_DIR/PG_VERSION ]]; then want=$(cat "$PGDATA_DIR/PG_VERSION"); fi
    while IFS= read -r d; do
        [[ -n $d ]] && candidates+=("$d")
    done < <(
        for d in /usr/lib/postgresql/*/bin /usr/pgsql-*/bin /usr/local/pgsql/bin; do
            [[ -x $d/initdb && -x $d/pg_ctl ]] && echo "$d"
        done | sort -V -r
    )
    if p=$(command -v pg_ctl 2>/dev/null) && [[ -x $(dirname -- "$p")/initdb ]]; then
        candidates+=("$(dirname -- "$p")")
    fi
    [[ ${#candidates[@]} -gt 0 ]] || return 1
    if [[ -n $want ]]; then
        for d in "${candidates[@]}"; do
            if "$d/pg_ctl" --version 2>/dev/null | grep -Eq "[^0-9.]${want}(\.|\$| )"; then
                PG_BIN=$d
                return 0
            fi
        done
        PG_BIN_ERR="PostgreSQL: $PGDATA_DIR was created by version $want but only other server versions are installed (${candidates[*]}); remove $PGDATA_DIR or install PostgreSQL $want"
        return 2
    fi
    PG_BIN=${candidates[0]}
}

ensure_pg_bin() {
    local rc=0
    [[ -n $PG_BIN ]] && return 0
    find_pg_bin || rc=$?
    if [[ $rc -eq 0 ]]; then return 0; fi
    if [[ $rc -eq 2 ]]; then die "$PG_BIN_ERR"; fi
    if is_root && command -v apt-get >/dev/null 2>&1; then
        apt_install postgresql || log "apt-get install postgresql failed"
        find_pg_bin && return 0
    fi
    die "PostgreSQL server binaries (initdb, pg_ctl) not found: install the 'postgresql' package or set DATABASE_URL"
}

# Decide which user runs initdb/pg_ctl (the server refuses to run as root).
choose_pg_user() {
    local owner
    if ! is_root; then
        PG_RUN_USER=
        if [[ -e $PGDATA_DIR && ! -O $PGDATA_DIR ]]; then
            die "PostgreSQL: $PGDATA_DIR is owned by $(stat -c %U -- "$PGDATA_DIR"), not by $(id -un); run as that user or remove it"
        fi
        return 0
    fi
    if [[ -d $PGDATA_DIR ]]; then
        owner=$(stat -c %U -- "$PGDATA_DIR")
        if [[ $owner != root && $owner != UNKNOWN ]]; then
            PG_RUN_USER=$owner
            return 0
        fi
    fi
    if id -u postgres >/dev/null 2>&1; then
        PG_RUN_USER=postgres
    elif id -u nobody >/dev/null 2>&1; then
        PG_RUN_USER=nobody
    else
        die "PostgreSQL: running as root and neither a 'postgres' nor a 'nobody' user exists to run the server"
    fi
}

# as_pg_user CMD...: run CMD as PG_RUN_USER, from inside .local.
as_pg_user() {
    if [[ -z $PG_RUN_USER ]]; then
        (cd -- "$LOCAL_DIR" && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd -- "$LOCAL_DIR" && runuser -u "$PG_RUN_USER" -- "$@")
    else
        local cmd
        cmd=$(printf '%q ' "$@")
        (cd -- "$LOCAL_DIR" && su -s /bin/sh "$PG_RUN_USER" -c "$cmd")
    fi
}

# is_our_postmaster PID: PID is a postgres process serving PGDATA_DIR.
is_our_postmaster() {
    local pid=$1 cwd
    pid_alive "$pid" || return 1
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    if [[ -n $cwd ]]; then
        [[ $cwd == "$PGDATA_DIR" ]]
    else
        pid_comm_matches "$pid" 'postgres*' || pid_comm_matches "$pid" 'postmaster*'
    fi
}

# Remove lock files left behind by a crashed server (pid no longer a postmaster of ours).
clear_stale_pg_locks() {
    local pidfile=$PGDATA_DIR/postmaster.pid pid lock
    if [[ -f $pidfile ]]; then
        pid=$(head -n 1 -- "$pidfile" 2>/dev/null || true)
        if ! is_our_postmaster "$pid"; then
            log "PostgreSQL: removing stale $pidfile (pid ${pid:-?} is not a running postmaster for it)"
            rm -f -- "$pidfile"
        fi
    fi
    for lock in "$LOCAL_DIR"/.s.PGSQL.*.lock; do
        [[ -f $lock ]] || continue
        pid=$(head -n 1 -- "$lock" 2>/dev/null || true)
        if ! is_our_postmaster "$pid"; then
            rm -f -- "$lock" "${lock%.lock}"
        fi
    done
}

# Port of the project-local cluster if its postmaster is running (empty otherwise).
local_pg_port() {
    local pidfile=$PGDATA_DIR/postmaster.pid pid port
    [[ -f $pidfile ]] || return 0
    pid=$(sed -n 1p -- "$pidfile" 2>/dev/null || true)
    port=$(sed -n 4p -- "$pidfile" 2>/dev/null || true)
    if [[ $port =~ ^[0-9]+$ ]] && is_our_postmaster "$pid"; then echo "$port"; fi
}

# local_pg_url PORT: the input URL re-pointed at 127.0.0.1:PORT.
local_pg_url() {
    local user
    parse_url "$DB_URL"
    user=${U_USERINFO:-postgres}
    printf '%s://%s@127.0.0.1:%s/%s%s' "$U_SCHEME" "$user" "$1" "${U_PATH:-postgres}" "${U_QUERY:+?$U_QUERY}"
}

# wait_pg URL: poll until usable (WAIT_SECS).
wait_pg() {
    local i
    for ((i = 0; i < WAIT_SECS * 2; i++)); do
        pg_probe "$1" && return 0
        sleep 0.5
    done
    return 1
}

pg_log_tail() {
    if [[ -f $PG_LOG ]]; then
        log "---- last lines of $PG_LOG ----"
        tail -n 20 -- "$PG_LOG" >&2 || true
        log "-------------------------------"
    fi
}

init_local_pg() {
    if [[ -d $PGDATA_DIR && -n $(ls -A -- "$PGDATA_DIR" 2>/dev/null) ]]; then
        die "PostgreSQL: $PGDATA_DIR exists but is not a database cluster (no PG_VERSION); remove it"
    fi
    mkdir -p -- "$PGDATA_DIR"
    chmod 700 -- "$PGDATA_DIR"
    if [[ -n $PG_RUN_USER ]]; then chown -R -- "$PG_RUN_USER:" "$PGDATA_DIR"; fi
    log "PostgreSQL: initdb $PGDATA_DIR ($("$PG_BIN/initdb" --version 2>/dev/null || echo "$PG_BIN"))"
    if ! as_pg_user "$PG_BIN/initdb" -D "$PGDATA_DIR" --auth=trust -U postgres -E UTF8 --no-locale >"$LOCAL_DIR/initdb.log" 2>&1; then
        cat -- "$LOCAL_DIR/initdb.log" >&2 || true
        rm -rf -- "$PGDATA_DIR"
        die "PostgreSQL: initdb failed"
    fi
    # Disposable dev/test cluster: trade durability for speed.
    {
        echo
        echo '# added by scripts/ensure_services.sh (disposable local cluster)'
        echo 'fsync = off'
        echo 'synchronous_commit = off'
        echo 'full_page_writes = off'
    } >>"$PGDATA_DIR/postgresql.conf"
}

start_local_pg() {
    local port=$1 sockdir=$LOCAL_DIR opts
    if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then init_local_pg; fi
    clear_stale_pg_locks
    # Unix socket path must fit in sockaddr_un (107 bytes); otherwise TCP only.
    if [[ ${#sockdir} -gt 90 ]]; then sockdir=; fi
    if [[ $sockdir == *"'"* ]]; then sockdir=; fi
    opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sockdir'"
    touch -- "$PG_LOG"
    if [[ -n $PG_RUN_USER ]]; then chown -- "$PG_RUN_USER:" "$PG_LOG"; fi
    if ! as_pg_user "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$WAIT_SECS" -o "$opts" start </dev/null >&2 3>&-; then
        pg_log_tail
        die "PostgreSQL: pg_ctl start failed (data dir $PGDATA_DIR, port $port)"
    fi
}

ensure_postgres() {
    local rc=0 port url host
    parse_url "$DB_URL" || die "DATABASE_URL is not a URL: $DB_URL"
    host=${U_HOST:-localhost}
    port=${U_PORT:-5432}

    pg_probe "$DB_URL" || rc=$?
    if [[ $rc -eq 0 ]]; then
        if [[ $(local_pg_port) == "$port" ]]; then
            log "PostgreSQL: using running project-local cluster (.local/pgdata) at $host:$port"
        else
            log "PostgreSQL: using running server at $host:$port"
        fi
        pg_prepare "$DB_URL"
        DB_URL_OUT=$DB_URL
        return 0
    fi
    if [[ $rc -eq 2 && $(local_pg_port) == "$port" ]]; then
        : # our own cluster, e.g. the URL's role does not exist there yet: handled below
    elif [[ $rc -eq 2 ]]; then
        if [[ $DB_URL_EXPLICIT -eq 1 ]]; then
            die "PostgreSQL: a server answers at $host:$port but connecting as given in DATABASE_URL failed: $PROBE_ERR"
        fi
        log "PostgreSQL: server at $host:$port answers but is not usable with the default URL ($PROBE_ERR); using a project-local cluster instead"
    fi

    acquire_lock
    ensure_pg_bin
    choose_pg_user
    if [[ -n $PG_RUN_USER ]]; then
        chown -- "$PG_RUN_USER:" "$LOCAL_DIR" # socket directory + log must be writable by the server
        if ! as_pg_user test -w "$LOCAL_DIR"; then
            die "PostgreSQL: user $PG_RUN_USER cannot write to $LOCAL_DIR (is a parent directory private?); set DATABASE_URL to a reachable server"
        fi
    fi

    # Already running (from an earlier run, or a concurrent one that held the lock)?
    port=$(local_pg_port)
    if [[ -n $port ]]; then
        url=$(local_pg_url "$port")
        if wait_pg "postgres://postgres@127.0.0.1:$port/postgres"; then
            log "PostgreSQL: reusing project-local cluster in .local/pgdata on port $port"
            pg_prepare "$url" "postgres://postgres@127.0.0.1:$port/postgres"
            DB_URL_OUT=$url
            return 0
        fi
        pg_log_tail
        die "PostgreSQL: project-local cluster (.local/pgdata) is running but does not answer on port $port"
    fi

    port=$(pick_port "${U_PORT:-5432}" "$PG_FALLBACK_PORT") || die "PostgreSQL: no free port found for the local cluster"
    start_local_pg "$port"
    url=$(local_pg_url "$port")
    if ! wait_pg "postgres://postgres@127.0.0.1:$port/postgres"; then
        pg_log_tail
        die "PostgreSQL: local cluster did not answer on 127.0.0.1:$port within ${WAIT_SECS}s: $PROBE_ERR"
    fi
    log "PostgreSQL: started project-local cluster in .local/pgdata on port $port"
    pg_prepare "$url" "postgres://postgres@127.0.0.1:$port/postgres"
    DB_URL_OUT=$url
}

# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------

# redis_ping URL: 0 PONG, 1 nothing answers, 2 something answers but no PONG (PROBE_ERR).
redis_ping() {
    local url=$1 host port pass reply=''
    PROBE_ERR=
    parse_url "$url" || return 1
    host=${U_HOST:-127.0.0.1}
    port=${U_PORT:-6379}
    tcp_open "$host" "$port" || return 1
    if [[ -n $PY_REDIS ]]; then
        PROBE_ERR=$("$PY_REDIS" -c "$REDIS_PY" "$url" 2>&1) && return 0
        return 2
    fi
    if command -v redis-cli >/dev/null 2>&1; then
        reply=$(timeout 5 redis-cli -u "$url" ping 2>&1 || true)
    else
        pass=
        if [[ $U_USERINFO == *:* ]]; then pass=${U_USERINFO#*:}; fi
        # shellcheck disable=SC2016  # expanded by the inner bash
        reply=$(timeout 5 bash -c '
            exec 9<>"/dev/tcp/$0/$1" || exit 1
            if [[ -n $2 ]]; then printf "AUTH %s\r\n" "$2" >&9; IFS= read -r _ <&9; fi
            printf "PING\r\n" >&9; IFS= read -r line <&9; printf "%s" "${line%$'"'"'\r'"'"'}"
        ' "$host" "$port" "$pass" 2>&1 || true)
    fi
    [[ $reply == *PONG* ]] && return 0
    PROBE_ERR=$reply
    return 2
}

wait_redis() {
    local i
    for ((i = 0; i < WAIT_SECS * 2; i++)); do
        redis_ping "$1" && return 0
        sleep 0.5
    done
    return 1
}

# Port of the project-local redis if its process is running (empty otherwise).
local_redis_port() {
    local pid port
    [[ -f $REDIS_PIDFILE && -f $REDIS_PORTFILE ]] || return 0
    pid=$(cat -- "$REDIS_PIDFILE" 2>/dev/null || true)
    port=$(cat -- "$REDIS_PORTFILE" 2>/dev/null || true)
    if [[ $port =~ ^[0-9]+$ ]] && pid_alive "$pid" && pid_comm_matches "$pid" 'redis*'; then echo "$port"; fi
}

local_redis_url() {
    parse_url "$REDIS_URL_IN"
    printf 'redis://127.0.0.1:%s/%s' "$1" "${U_PATH:-0}"
}

ensure_redis() {
    local rc=0 port url host
    parse_url "$REDIS_URL_IN" || die "REDIS_URL is not a URL: $REDIS_URL_IN"
    host=${U_HOST:-127.0.0.1}
    port=${U_PORT:-6379}

    redis_ping "$REDIS_URL_IN" || rc=$?
    if [[ $rc -eq 0 ]]; then
        if [[ $(local_redis_port) == "$port" ]]; then
            log "Redis: using running project-local redis-server at $host:$port"
        else
            log "Redis: using running server at $host:$port"
        fi
        REDIS_URL_OUT=$REDIS_URL_IN
        return 0
    fi
    if [[ $rc -eq 2 ]]; then
        if [[ $REDIS_URL_EXPLICIT -eq 1 ]]; then
            die "Redis: something answers at $host:$port but PING via REDIS_URL failed: $PROBE_ERR"
        fi
        log "Redis: $host:$port answers but PING failed ($PROBE_ERR); using a project-local redis-server instead"
    fi

    acquire_lock
    port=$(local_redis_port)
    if [[ -n $port ]]; then
        url=$(local_redis_url "$port")
        if wait_redis "$url"; then
            log "Redis: reusing project-local redis-server on port $port"
            REDIS_URL_OUT=$url
            return 0
        fi
        die "Redis: project-local redis-server (pid $(cat -- "$REDIS_PIDFILE")) does not answer on port $port; see $REDIS_LOG"
    fi
    rm -f -- "$REDIS_PIDFILE" "$REDIS_PORTFILE"

    if ! command -v redis-server >/dev/null 2>&1; then
        if is_root && command -v apt-get >/dev/null 2>&1; then
            apt_install redis-server || log "apt-get install redis-server failed"
        fi
        command -v redis-server >/dev/null 2>&1 ||
            die "redis-server not found: install the 'redis-server' package or set REDIS_URL"
    fi

    port=$(pick_port "${U_PORT:-6379}" "$REDIS_FALLBACK_PORT") || die "Redis: no free port found"
    mkdir -p -- "$LOCAL_DIR"
    if ! redis-server --port "$port" --save '' --appendonly no --daemonize yes \
        --dir "$LOCAL_DIR" --logfile "$REDIS_LOG" --pidfile "$REDIS_PIDFILE" \
        --bind 127.0.0.1 </dev/null >&2 3>&-; then
        die "Redis: redis-server failed to start; see $REDIS_LOG"
    fi
    echo "$port" >"$REDIS_PORTFILE"
    url=$(local_redis_url "$port")
    if ! wait_redis "$url"; then
        tail -n 20 -- "$REDIS_LOG" >&2 || true
        die "Redis: local redis-server did not answer on 127.0.0.1:$port within ${WAIT_SECS}s"
    fi
    log "Redis: started project-local redis-server on port $port (.local/redis.log)"
    REDIS_URL_OUT=$url
}

# --------------------------------------------------------------------------------------------
# --stop
# --------------------------------------------------------------------------------------------
stop_services() {
    local pid i owner stopped=0
    if [[ -f $PGDATA_DIR/postmaster.pid ]]; then
        pid=$(head -n 1 -- "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
        if is_our_postmaster "$pid"; then
            PG_RUN_USER=
            if is_root; then
                owner=$(stat -c %U -- "$PGDATA_DIR")
                if [[ $owner != root ]]; then PG_RUN_USER=$owner; fi
            fi
            if find_pg_bin && as_pg_user "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t "$WAIT_SECS" stop </dev/null >&2 3>&-; then
                :
            else
                kill -INT "$pid" 2>/dev/null || true
                for ((i = 0; i < WAIT_SECS * 2; i++)); do
                    pid_alive "$pid" || break
                    sleep 0.5
                done
            fi
            log "PostgreSQL: stopped project-local cluster (.local/pgdata)"
            stopped=1
        else
            log "PostgreSQL: removing stale .local/pgdata/postmaster.pid"
            rm -f -- "$PGDATA_DIR/postmaster.pid"
        fi
    fi
    if [[ -f $REDIS_PIDFILE ]]; then
        pid=$(cat -- "$REDIS_PIDFILE" 2>/dev/null || true)
        if pid_alive "$pid" && pid_comm_matches "$pid" 'redis*'; then
            kill -TERM "$pid" 2>/dev/null || true
            for ((i = 0; i < WAIT_SECS * 2; i++)); do
                pid_alive "$pid" || break
                sleep 0.5
            done
            if pid_alive "$pid"; then log "Redis: pid $pid did not exit after SIGTERM"; fi
            log "Redis: stopped project-local redis-server (pid $pid)"
            stopped=1
        fi
        rm -f -- "$REDIS_PIDFILE" "$REDIS_PORTFILE"
    fi
    if [[ $stopped -eq 0 ]]; then log "No project-local PostgreSQL/Redis instances are running."; fi
}

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

main() {
    case ${1:-} in
        '') ;;
        --stop)
            stop_services
            return 0
            ;;
        -h | --help)
            usage
            return 0
            ;;
        *)
            usage
            die "unknown argument: $1"
            ;;
    esac

    DB_URL_EXPLICIT=0
    REDIS_URL_EXPLICIT=0
    if [[ -n ${DATABASE_URL:-} ]]; then DB_URL_EXPLICIT=1; fi
    if [[ -n ${REDIS_URL:-} ]]; then REDIS_URL_EXPLICIT=1; fi
    DB_URL=${DATABASE_URL:-$DEFAULT_DATABASE_URL}
    REDIS_URL_IN=${REDIS_URL:-$DEFAULT_REDIS_URL}
    DB_URL_OUT=
    REDIS_URL_OUT=

    find_python
    if [[ -z $PY_PG ]]; then log "note: psycopg not importable (.venv missing?); using psql/TCP checks"; fi

    ensure_postgres
    ensure_redis

    emit_export DATABASE_URL "$DB_URL_OUT"
    emit_export REDIS_URL "$REDIS_URL_OUT"
}

main "$@"
