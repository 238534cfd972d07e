#!/bin/bash
# two veritrail nodes on one PostgreSQL database, each loaded by its own bench client
# Usage: VT=path/to/veritrail two-*.sh DATABASE_NAME [SENDERS [DURATION]]
# Needs a running PostgreSQL (PGHOST, PGPORT, PGHOSTPORT, user postgres) and a master key file.
VT=${VT:-veritrail}
set -e
DB=$1; CONC=${2:-8}; DUR=${3:-20s}
export VERITRAIL_MASTER_KEY_FILE=${VERITRAIL_MASTER_KEY_FILE:-/tmp/pgbench/master-key}
psql -h ${PGHOST:-127.0.0.1} -p ${PGPORT:-55432} -U postgres -qc "create database $DB"
URL="postgres://postgres@${PGHOSTPORT:-127.0.0.1:55432}/$DB?sslmode=disable"
TOK=vt_two-node-bench-token-0123456789abcdef
rm -rf /tmp/n1 /tmp/n2
VERITRAIL_BOOTSTRAP_TOKEN=$TOK $VT serve --db "$URL" --data /tmp/n1 --addr 127.0.0.1:18081 --rate-limit 0 --log-level warn & P1=$!
sleep 3
VERITRAIL_BOOTSTRAP_TOKEN=$TOK $VT serve --db "$URL" --data /tmp/n2 --addr 127.0.0.1:18082 --rate-limit 0 --log-level warn & P2=$!
sleep 3
$(dirname "$0")/enable-ai.sh http://127.0.0.1:18081 $TOK
$VT bench --server http://127.0.0.1:18081 --token $TOK --duration $DUR --concurrency $CONC > /tmp/n1.out 2>&1 & B1=$!
$VT bench --server http://127.0.0.1:18082 --token $TOK --duration $DUR --concurrency $CONC > /tmp/n2.out 2>&1 & B2=$!
wait $B1 $B2
kill $P1 $P2; wait $P1 $P2 || true
tail -6 /tmp/n1.out; tail -6 /tmp/n2.out
