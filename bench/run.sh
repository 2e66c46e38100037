#!/usr/bin/env bash
# Load-tests a real `gatehouse serve` on this machine and prints a table.
#
# Builds gatehouse and bench/load into a temporary directory, starts the server
# on a free 127.0.0.1 port with a temporary data dir (embedded SQLite), creates
# two client_credentials clients (opaque and JWT access tokens), drives each
# target for a few seconds, stops the server and removes everything.
#
#   bench/run.sh                       # 5 s per target, 16 workers
#   DURATION=10s WORKERS=32 bench/run.sh
#   GATEHOUSE_SIGNING_ALG=ES256 bench/run.sh
#   BENCH_DATABASE_URL=postgres://…/scratch bench/run.sh   # a scratch database: clients are added to it
set -euo pipefail

cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
WORKERS=${WORKERS:-16}
WARMUP=${WARMUP:-1s}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
server_pid=
cleanup() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port picks a random port nothing on 127.0.0.1 answers on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

echo "building gatehouse and bench/load into $tmp" >&2
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/load" ./bench/load

port=$(free_port)
export GATEHOUSE_ADDR="127.0.0.1:$port"
export GATEHOUSE_ISSUER="http://127.0.0.1:$port"
export GATEHOUSE_DATA_DIR="$tmp/data"
export GATEHOUSE_LOG_LEVEL=warn
unset GATEHOUSE_CLIENTS_FILE GATEHOUSE_TLS_CERT GATEHOUSE_TLS_KEY
backend=sqlite
if [[ -n ${BENCH_DATABASE_URL:-} ]]; then
	backend=postgres
	export DATABASE_URL="$BENCH_DATABASE_URL"
	export GATEHOUSE_SECRET="${GATEHOUSE_SECRET:-bench-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')}"
else
	unset DATABASE_URL
fi
alg=${GATEHOUSE_SIGNING_ALG:-RS256}

"$tmp/gatehouse" serve >"$tmp/server.log" 2>&1 &
server_pid=$!
for i in $(seq 100); do
	if curl -fsS -o /dev/null "$GATEHOUSE_ISSUER/.well-known/openid-configuration" 2>/dev/null; then
		break
	fi
	if ! kill -0 "$server_pid" 2>/dev/null || [[ $i == 100 ]]; then
		echo "gatehouse serve did not start:" >&2
		cat "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.1
done

"$tmp/gatehouse" clients create --grant-types client_credentials --json --name "bench opaque" >"$tmp/opaque.json"
"$tmp/gatehouse" clients create --grant-types client_credentials --access-token jwt --json --name "bench jwt" >"$tmp/jwt.json"

row() {
	"$tmp/load" -issuer "$GATEHOUSE_ISSUER" -c "$WORKERS" -d "$DURATION" -warmup "$WARMUP" -row "$@"
}

echo
echo "gatehouse on $GATEHOUSE_ISSUER ($backend, $alg), $(nproc 2>/dev/null || echo '?') CPUs shared with the load generator, $(go env GOVERSION)"
echo
echo "| target | workers | duration | requests | req/s | p50 | p90 | p99 | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
row -target discovery
row -target jwks
row -target client_credentials -client-json "$tmp/opaque.json" -label "client_credentials (opaque)"
row -target client_credentials -client-json "$tmp/jwt.json" -label "client_credentials (jwt, $alg)"
row -target introspect -client-json "$tmp/opaque.json" -label "introspect (opaque client_credentials token)"

if grep -q 'level=ERROR' "$tmp/server.log"; then
	echo
	echo "server errors:" >&2
	grep 'level=ERROR' "$tmp/server.log" | head -20 >&2
fi
