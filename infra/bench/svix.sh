#!/usr/bin/env bash
# Svix's open-source server beside Relay, on the same machine and under the same load driver.
# Not part of CI: the first build takes about twenty minutes on 2 cores.
#
#   infra/bench/svix.sh [relay-load options...]     e.g. infra/bench/svix.sh --events 1000 --publishers 20
#
# 1. clones svix/svix-webhooks at SVIX_COMMIT and builds `svix-server` (release) under .svix/;
# 2. starts Postgres 15 from Debian's packages (installed with apt-get when missing and root)
#    in a throw-away cluster under .svix/pg, on a Unix socket only;
# 3. runs svix-server with the in-memory queue and cache (SVIX_QUEUE=redis for its default
#    Redis queue, which needs Debian's redis-server), loopback endpoints allowed;
# 4. drives it with `relay-load --target svix`: the load driver that drives Relay's local stack,
#    so accepted/s, delivered/s, latency and CPU per event are measured the same way.
#
# Settings: SVIX_GIT (where to clone from; default GitHub), SVIX_COMMIT, SVIX_QUEUE (memory),
# SVIX_MIRROR_DIR (a directory of `fetch` snapshots, `owner+name/repo`, for a machine that cannot
# reach GitHub: the server's git dependencies are then taken from there, and its patched hyper
# is rebuilt from crates.io's hyper 1.11.0 plus the fork's two-line change, shown below).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK="$ROOT/.svix"
SVIX_GIT=${SVIX_GIT:-https://github.com/svix/svix-webhooks}
SVIX_COMMIT=${SVIX_COMMIT:-4fc0cfb8b426c87ef7e2b937e7d896a71d456a47}
SVIX_QUEUE=${SVIX_QUEUE:-memory}
PG_PORT=${SVIX_PG_PORT:-55432}
SVIX_PORT=${SVIX_PORT:-8071}
log() { printf '\033[1m[svix]\033[0m %s\n' "$*" >&2; }
mkdir -p "$WORK"

# --- 1. source and build -------------------------------------------------------------------
SRC="$WORK/svix-webhooks"
if [[ ! -d "$SRC/.git" ]]; then
  log "cloning $SVIX_GIT"
  git clone --quiet --no-checkout "$SVIX_GIT" "$SRC"
fi
git -C "$SRC" checkout --quiet --force "$SVIX_COMMIT"

# The server's three git dependencies, from local snapshots when GitHub is out of reach.
patch_args=()
if [[ -n "${SVIX_MIRROR_DIR:-}" ]]; then
  deps="$WORK/deps"
  mkdir -p "$deps"
  checkout() { # owner+name rev dir
    if [[ ! -d "$deps/$3" ]]; then
      mkdir -p "$deps/$3"
      git -C "$SVIX_MIRROR_DIR/$1/repo" archive "$2" | tar -x -C "$deps/$3"
    fi
  }
  checkout svix+omniqueue-rs acb40983ed65f6cbebb19c05d590249306674a33 omniqueue-rs
  checkout svix+rust-executable-metadata 7a32435fbdab53f33e6abab9c1ab500afef0a7a8 rust-executable-metadata
  # svix/hyper@7d3bff9 is hyper 1.11.0 with `HeaderCaseMap` made public, given `get` and
  # `From<HeaderMap<Bytes>>` (the fork's v1-headercasemap branch); the snapshot lacks that
  # commit, so the same change is applied to crates.io's 1.11.0.
  if [[ ! -d "$deps/hyper-1.11.0" ]]; then
    curl -sSfL https://static.crates.io/crates/hyper/hyper-1.11.0.crate | tar -xz -C "$deps"
    python3 - "$deps/hyper-1.11.0/src/ext/mod.rs" <<'PY'
import sys
path = sys.argv[1]
src = open(path).read()
src = src.replace("pub(crate) struct HeaderCaseMap(HeaderMap<Bytes>);", "pub struct HeaderCaseMap(HeaderMap<Bytes>);", 1)
src = src.replace(
    "impl HeaderCaseMap {\n",
    "impl HeaderCaseMap {\n    /// The first spelling of `key`.\n    pub fn get(&self, key: HeaderName) -> Option<&Bytes> {\n        self.0.get(key)\n    }\n\n",
    1,
)
src += "\n#[cfg(all(any(feature = \"client\", feature = \"server\"), feature = \"http1\"))]\nimpl From<HeaderMap<Bytes>> for HeaderCaseMap {\n    fn from(hdr_map: HeaderMap<Bytes>) -> Self {\n        Self(hdr_map)\n    }\n}\n"
assert src.count("pub struct HeaderCaseMap") == 1 and "pub fn get(&self, key: HeaderName)" in src
open(path, "w").write(src)
PY
  fi
  patch_args=(
    --config "patch.crates-io.hyper.path=\"$deps/hyper-1.11.0\""
    --config "patch.'https://github.com/svix/omniqueue-rs'.omniqueue.path=\"$deps/omniqueue-rs/omniqueue\""
    --config "patch.'https://github.com/svix/rust-executable-metadata'.rust-executable-metadata.path=\"$deps/rust-executable-metadata\""
  )
fi
# svix-server links OpenSSL (hyper-openssl): its headers and pkg-config must be there.
if ! pkg-config --exists openssl 2>/dev/null; then
  [[ $(id -u) == 0 ]] || { log "svix-server needs pkg-config and libssl-dev (apt-get install, as root)"; exit 1; }
  apt-get update -q >/dev/null && apt-get install -y -q pkg-config libssl-dev >/dev/null
fi
SERVER="$WORK/target/release/svix-server"
log "building svix-server (release; first time about twenty minutes on 2 cores)"
(cd "$SRC/server" && CARGO_TARGET_DIR="$WORK/target" cargo build --quiet --release --package svix-server --bin svix-server "${patch_args[@]}")
[[ "${1:-}" == "--build-only" ]] && exit 0

# --- 2. Postgres from Debian's packages (15 on bookworm), a throw-away cluster on a socket ----
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z "$PG_BIN" ]]; then
  [[ $(id -u) == 0 ]] || { log "Postgres is missing: apt-get install postgresql (as root)"; exit 1; }
  log "installing Debian's postgresql"
  apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
PG="$WORK/pg"
as_pg=()
if [[ $(id -u) == 0 ]]; then
  # Postgres refuses to run as root: the cluster belongs to Debian's postgres user, who must be
  # able to reach .svix/pg (a clone under /root, mode 700, is out of its reach).
  as_pg=(runuser -u postgres --)
fi
rm -rf "$PG"
mkdir -p "$PG"
if [[ ${#as_pg[@]} -gt 0 ]]; then chown postgres "$PG"; fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$PG/data" -U postgres --auth=trust >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG/data" -l "$PG/log" -w \
  -o "-k $PG -c listen_addresses='' -p $PG_PORT -c max_connections=200" start >/dev/null
SERVER_PID=
REDIS=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true # its graceful shutdown holds the port for seconds
  fi
  if [[ -n "$REDIS" ]]; then redis-cli -p 56379 shutdown nosave >/dev/null 2>&1 || true; fi
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG/data" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- 3. svix-server: Postgres, in-memory queue and cache, loopback endpoints allowed ------------
export SVIX_DB_DSN="postgresql://postgres@localhost/postgres?host=$PG&port=$PG_PORT"
export SVIX_JWT_SECRET=relay-load-comparison-secret
export SVIX_LISTEN_ADDRESS="127.0.0.1:$SVIX_PORT"
export SVIX_QUEUE_TYPE="$SVIX_QUEUE" SVIX_CACHE_TYPE=memory
export SVIX_WHITELIST_SUBNETS="[127.0.0.0/8]"
export SVIX_LOG_LEVEL=info  # as Relay logs: a line per request and per delivery
if [[ "$SVIX_QUEUE" == redis ]]; then
  command -v redis-server >/dev/null || { log "SVIX_QUEUE=redis needs Debian's redis-server"; exit 1; }
  redis-server --port 56379 --save '' --daemonize yes >/dev/null
  REDIS=56379
  export SVIX_REDIS_DSN=redis://127.0.0.1:56379 SVIX_CACHE_TYPE=redis
fi
TOKEN=$("$SERVER" jwt generate | sed -n 's/^Token (Bearer): //p')
"$SERVER" --run-migrations >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$SVIX_PORT/api/v1/health/" >/dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$SVIX_PORT/api/v1/health/" >/dev/null || { log "svix-server did not start; see $WORK/server.log"; exit 1; }
log "svix-server $(git -C "$SRC" rev-parse --short HEAD) up on 127.0.0.1:$SVIX_PORT ($SVIX_QUEUE queue)"

# --- 4. the same load driver ------------------------------------------------------------------
if [[ ! -x "$ROOT/target/release/relay-bench" ]]; then
  (cd "$ROOT" && cargo build --quiet --release -p relay-bench --bin relay-bench)
fi
"$ROOT/target/release/relay-bench" load --target svix --url "http://127.0.0.1:$SVIX_PORT" --token "$TOKEN" "$@"
