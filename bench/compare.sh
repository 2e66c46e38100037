#!/usr/bin/env bash
# Side by side: Gatehouse (SQLite and PostgreSQL), node-oidc-provider and
# zitadel/oidc's example server on this machine, the same scenarios against
# each, one Markdown report (see bench/README.md).
#
# Builds gatehouse, the driver (bench/compare) and the zitadel example
# (bench/peers/zitadel-example, a module of its own) into a temporary
# directory, installs node-oidc-provider from its lock file when needed, and
# runs the driver, which starts every server on a free 127.0.0.1 port,
# creates a scratch PostgreSQL database, runs the scenarios, stops everything
# and drops the database. About 10 minutes with the defaults.
#
#   bench/compare.sh                              # writes bench/results/YYYY-MM-DD-<commit>.md
#   DURATION=2s WARMUP=500ms bench/compare.sh     # a quick look (about 4 minutes)
#   SYSTEMS=gatehouse-sqlite,node SCENARIOS=flow-rs256,refresh-rs256 OUT=none bench/compare.sh
#   BENCH_PG_URL=postgres://user@host:5432/postgres bench/compare.sh   # PG_URL=off: no PostgreSQL
#
# Settings (environment): DURATION (5s per run), WARMUP (1s), RUNS (2),
# SYSTEMS (gatehouse-sqlite,gatehouse-postgres,node,zitadel), SCENARIOS (all),
# CONCURRENCY (32), FLOWS (8), BROWSERS (16), FLOOD_RATE (200), BENCH_PG_URL,
# OUT (the report file; none: only print it). More driver flags after the
# command: bench/compare.sh -keep (keeps the servers' logs), -profile-dir DIR
# (a CPU profile of Gatehouse for each measured run: go tool pprof DIR/…).
set -euo pipefail

cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
RUNS=${RUNS:-2}
SYSTEMS=${SYSTEMS:-gatehouse-sqlite,gatehouse-postgres,node,zitadel}
SCENARIOS=${SCENARIOS:-all}
CONCURRENCY=${CONCURRENCY:-32}
FLOWS=${FLOWS:-8}
BROWSERS=${BROWSERS:-16}
FLOOD_RATE=${FLOOD_RATE:-200}
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD 2>/dev/null; then
	commit="$commit-dirty"
fi
out=${OUT:-bench/results/$(date +%F)-$commit.md}
[[ $out == none ]] && out=

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "building gatehouse, bench/compare and the zitadel example into $tmp" >&2
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/compare" ./bench/compare
(cd bench/peers/zitadel-example && go build -o "$tmp/zitadel-example" .)

node_dir=bench/peers/node-oidc-provider
if [[ ,$SYSTEMS, == *,node,* ]]; then
	# npm ci when node_modules is missing or older than the lock file.
	if [[ ! -f $node_dir/node_modules/.package-lock.json || $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
		echo "installing node-oidc-provider (npm ci)" >&2
		(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
fi

args=(
	-gatehouse "$tmp/gatehouse" -zitadel "$tmp/zitadel-example" -node-dir "$node_dir"
	-pg "${PG_URL:-$BENCH_PG_URL}" -systems "$SYSTEMS" -scenarios "$SCENARIOS"
	-d "$DURATION" -warmup "$WARMUP" -runs "$RUNS"
	-c "$CONCURRENCY" -flows "$FLOWS" -browsers "$BROWSERS" -flood-rate "$FLOOD_RATE"
	-commit "$commit" -command "DURATION=$DURATION WARMUP=$WARMUP RUNS=$RUNS bench/compare.sh"
)
if [[ -n $out ]]; then
	args+=(-out "$out")
fi
"$tmp/compare" "${args[@]}" "$@"
if [[ -n $out ]]; then
	echo "report written to $out" >&2
fi
