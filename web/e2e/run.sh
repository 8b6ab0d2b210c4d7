#!/usr/bin/env bash
# Runs the dashboard's browser end-to-end test against the real local API: starts `make run` (which also builds the
# front end and the functions) on a free loopback port with a throwaway state folder, waits for /api/health, runs
# web/e2e/dashboard.e2e.mjs in headless Chromium, and always stops everything it started.
#
#   bash web/e2e/run.sh               # screenshots in test-artifacts/
#   SCREENSHOTS_DIR=docs/screenshots bash web/e2e/run.sh   # also refresh the README's screenshots
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

: "${CHROMIUM:=/usr/bin/chromium}"
: "${HEALTH_TIMEOUT:=900}" # seconds: the first run builds the functions and the front end (5+ min on a busy 2-core machine)
[ -x "$CHROMIUM" ] || { echo "e2e: $CHROMIUM not found (apt-get install -y chromium)"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
influx_port=$(free_port)
# A fresh operator key for this run only (the local API takes it from the environment instead of generating one).
token() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
operator_key="e2e-op-$(token)"
device_key="e2e-dev-$(token)"
state=$(mktemp -d /tmp/iot-e2e-state.XXXXXX)
artifacts=${ARTIFACTS:-$repo/test-artifacts}
mkdir -p "$artifacts"
log=$artifacts/e2e-localapi.log
pgid=""

cleanup() {
	local rc=$?
	if [ -n "$pgid" ] && kill -0 -- "-$pgid" 2>/dev/null; then
		kill -TERM -- "-$pgid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	rm -rf "$state"
	exit $rc
}
trap cleanup EXIT INT TERM


# Its own process group, so cleanup reaches the API, its emulators and influxd, and nothing else.
# Its own InfluxDB too: INFLUX_URL/INFLUX_TOKEN from the caller's environment would point it elsewhere.
env -u INFLUX_URL -u INFLUX_TOKEN IOT_OPERATOR_KEY="$operator_key" IOT_DEVICE_KEY="$device_key" \
	setsid make --no-print-directory run LOCALAPI_FLAGS="-state $state -addr 127.0.0.1:$port -influx-addr 127.0.0.1:$influx_port -parameter-overrides MaxDevices=200000,PurgeDelaySeconds=35" \
	>"$log" 2>&1 &
pgid=$!
echo "e2e: local API pid $pgid on 127.0.0.1:$port, state $state, log $log"

deadline=$((SECONDS + HEALTH_TIMEOUT))
until curl -fs -o /dev/null --max-time 5 "http://127.0.0.1:$port/api/health"; do
	if ! kill -0 "$pgid" 2>/dev/null; then echo "e2e: the local API exited; last log lines:"; tail -n 40 "$log"; exit 1; fi
	if [ $SECONDS -ge $deadline ]; then echo "e2e: /api/health not up after ${HEALTH_TIMEOUT}s"; tail -n 40 "$log"; exit 1; fi
	sleep 1
done

# KEEP_BIG: the 10,000 devices of the dashboard's big-fleet step go with this run's throwaway state (deleting them
# one request each would take minutes).
# BIG_PREFIX names them, so the overview test below finds its 10,000 devices registered already.
big_prefix="e2ebig$(date +%s)-"
BASE_URL="http://127.0.0.1:$port" OPERATOR_KEY="$operator_key" ARTIFACTS="$artifacts" CHROMIUM="$CHROMIUM" KEEP_BIG=1 \
	BIG_PREFIX="$big_prefix" node web/e2e/dashboard.e2e.mjs

# The fleet overview with the dashboard test's 10,000 devices: it seeds the local API's InfluxDB and DynamoDB
# stand-in directly.
dynamodb_url=$(grep -o 'moto DynamoDB server running[^}]*url=[^ ]*' "$log" | head -n1 | sed 's/.*url=//')
set -a
# shellcheck disable=SC1091
. "$state/influx.env"
set +a
BASE_URL="http://127.0.0.1:$port" OPERATOR_KEY="$operator_key" ARTIFACTS="$artifacts" CHROMIUM="$CHROMIUM" \
	REGISTERED_PREFIX="$big_prefix" DYNAMODB_URL="$dynamodb_url" INFLUX_URL="http://127.0.0.1:$influx_port" INFLUX_TOKEN="$INFLUX_TOKEN" INFLUX_ORG="$INFLUX_ORG" \
	node web/e2e/overview.e2e.mjs

# A DynamoDB call a function's template policy does not allow would be AccessDenied on AWS; the local API refused
# it too and logged it. Fail on any, even one whose error the page survived.
if grep -q "IAM stand-in refused a DynamoDB call" "$log"; then # devstack.RefusalMark
	echo "e2e: DynamoDB calls the functions' template policies do not allow:"
	grep "IAM stand-in refused a DynamoDB call" "$log" | head -n 10
	exit 1
fi
