#!/usr/bin/env bash
# Build and smoke-test a REAL InfluxDB OSS 2.x server (influxd v2.7.12, no UI) on a machine that reaches
# only the Go module proxy and Debian's package archive (no crates.io, no GitHub, no Docker).
#
# Inputs (nothing else is downloaded):
#   Go module proxy : github.com/influxdata/influxdb/v2@v2.7.12 (+ its module graph, incl. flux v0.196.1 and
#                     github.com/google/flatbuffers@v24.3.25+incompatible, whose zip carries rust/flatbuffers)
#   Debian bookworm : librust-*-dev crate packages (unpacked as a cargo "directory" source, not installed)
#   Debian trixie   : librust-pretty-dev 0.12.3-2 (bookworm has no `pretty` crate); private apt lists dir
#   Local patches   : libflux-debian-crates.patch (Cargo.toml deps -> Debian versions, libflate -> flate2),
#                     libflux-no-salsa.patch (flux-core/src/db.rs: salsa query group -> hand-written memo db),
#                     pretty-0.12-hardline.patch (pretty 0.12 renderer: hardline indentation as in 0.11)
# Needs: go (1.26 tested), cargo+rustc (1.95 tested), gcc, pkg-config, curl, python3, apt-get, dpkg-deb, patch.
#
# Usage:  bash BUILD.sh [build|smoke|all]      (default: all)
# Result: $INFLUXD_CACHE/bin/influxd (built once per cache dir; re-runs reuse it).
set -euo pipefail

MODE=${1:-all}   # build | smoke | all | path
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INFLUXDB_VERSION=v2.7.12
FLUX_VERSION=v0.196.1
PRETTY_DEB_VERSION=${PRETTY_DEB_VERSION:-0.12.3-2}      # Debian 13 "trixie"
# The cache is keyed by the recipe's content (this script and its patches), so any change to the recipe
# builds a fresh server instead of silently reusing one built from an older recipe.
RECIPE_KEY=$(cat "$HERE/build-influxd.sh" "$HERE"/*.patch | sha256sum | cut -c1-12)
CACHE=${INFLUXD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iot-center/influxd-$INFLUXDB_VERSION-$RECIPE_KEY}
BIN=$CACHE/bin/influxd
export GOFLAGS=-buildvcs=false CGO_ENABLED=1
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
jdir() { python3 -c 'import sys,json; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))'; }

build() {
  mkdir -p "$CACHE"
  local REG=$CACHE/crates/usr/share/cargo/registry

  # 1. Debian Rust crates -> a cargo "directory" source (extracted with dpkg-deb, nothing installed system-wide)
  if [ ! -d "$REG" ]; then
    log "apt: downloading librust-*-dev crates (bookworm) + librust-pretty-dev (trixie)"
    [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -i bookworm)" ] || apt-get update -qq
    mkdir -p "$CACHE/debs/partial" && : > "$CACHE/empty-status"
    local crates=(librust-anyhow-dev librust-env-logger+default-dev librust-once-cell-dev librust-serde-dev
      librust-serde+serde-derive-dev librust-serde-derive-dev librust-serde-json-dev librust-thiserror-dev
      librust-walkdir-dev librust-chrono-dev librust-codespan-reporting-dev librust-derivative-dev
      librust-derive-more-dev librust-ena-dev librust-fnv-dev librust-indexmap-dev librust-log-dev
      librust-maplit-dev librust-ordered-float-dev librust-regex-dev librust-structopt-dev
      librust-flate2-dev librust-bitflags-dev librust-rustc-version-dev
      librust-arrayvec-dev librust-typed-arena-dev librust-unicode-width-dev librust-termcolor-dev)
    fetch_crates() {
      apt-get -qq -o Dir::Cache::archives="$CACHE/debs" -o Dir::State::status="$CACHE/empty-status" \
        install --download-only -y --no-install-recommends "${crates[@]}"
    }
    # stale package lists name versions the mirror no longer has: refresh them once and try again
    fetch_crates || { log "apt: download failed, refreshing package lists"; apt-get update -qq; fetch_crates; }
    # trixie (Debian 13) only for the `pretty` crate: private lists/cache dirs, the system apt config is untouched
    local T=$CACHE/apt-trixie
    mkdir -p "$T/lists/partial" "$T/cache/archives/partial" "$T/parts"
    # the same Debian mirror this machine's apt already uses, asked for the trixie suite
    local MIRROR
    MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    [ -n "$MIRROR" ] || { echo "no Debian mirror found in the apt sources" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$MIRROR" > "$T/parts/trixie.sources"
    local TA=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$T/parts" -o Dir::State::Lists="$T/lists"
              -o Dir::Cache="$T/cache" -o Dir::State::status=/dev/null -o Acquire::Languages=none -o Debug::NoLocking=1)
    apt-get -qq "${TA[@]}" update
    # just this one .deb (its deps arrayvec 0.7/typed-arena 2/unicode-width 0.1 come from bookworm above)
    (cd "$CACHE/debs" && apt-get -qq "${TA[@]}" download "librust-pretty-dev=$PRETTY_DEB_VERSION" 2>&1 | grep -v unsandboxed || true)
    [ -f "$CACHE/debs/librust-pretty-dev_${PRETTY_DEB_VERSION}_amd64.deb" ] || { echo "trixie librust-pretty-dev $PRETTY_DEB_VERSION not downloaded" >&2; exit 1; }
    rm -rf "$CACHE/crates.tmp" && mkdir -p "$CACHE/crates.tmp"
    for f in "$CACHE"/debs/*.deb; do dpkg-deb -x "$f" "$CACHE/crates.tmp"; done
    ls "$CACHE"/debs/*.deb | sed 's,.*/,,' > "$CACHE/debs.txt"
    mv "$CACHE/crates.tmp" "$CACHE/crates"
  fi

  # 2. Go sources from the module proxy
  log "go: downloading influxdb $INFLUXDB_VERSION, flux $FLUX_VERSION, flatbuffers"
  cd "$CACHE"   # outside any go.mod
  local idir fdir fbver fbdir
  idir=$(go mod download -json "github.com/influxdata/influxdb/v2@$INFLUXDB_VERSION" | jdir)
  fdir=$(go mod download -json "github.com/influxdata/flux@$FLUX_VERSION" | jdir)
  grep -q "github.com/influxdata/flux $FLUX_VERSION" "$idir/go.mod" || { echo "influxdb $INFLUXDB_VERSION does not use flux $FLUX_VERSION" >&2; exit 1; }
  # the flatbuffers Go module that flux (and thus influxd) is built with; its zip also holds the Rust runtime crate
  fbver=$(awk '$1=="github.com/google/flatbuffers"{print $2}' "$fdir/go.mod")
  grep -q "github.com/google/flatbuffers $fbver" "$idir/go.mod" || { echo "flatbuffers $fbver not in influxdb's go.mod" >&2; exit 1; }
  fbdir=$(go mod download -json "github.com/google/flatbuffers@$fbver" | jdir)
  log "flatbuffers Go module $fbver -> Rust crate $(grep -m1 '^version' "$fbdir/rust/flatbuffers/Cargo.toml")"

  # 3. libflux (Rust) -> static lib + flux.pc, fully offline
  if [ ! -f "$CACHE/libflux/lib/libflux.a" ]; then
    log "cargo: building libflux (offline, Debian crates + flatbuffers from the Go module zip)"
    rm -rf "$CACHE/flux-src" "$CACHE/flatbuffers-rust" "$CACHE/pretty-rust"
    mkdir -p "$CACHE/flux-src"
    cp -r "$fdir/libflux" "$fdir/stdlib" "$CACHE/flux-src/"      # build.rs compiles ../../stdlib
    cp -r "$fbdir/rust/flatbuffers" "$CACHE/flatbuffers-rust"
    cp -r "$REG/pretty-${PRETTY_DEB_VERSION%-*}" "$CACHE/pretty-rust"
    chmod -R u+w "$CACHE/flux-src" "$CACHE/flatbuffers-rust" "$CACHE/pretty-rust"
    # pretty >= 0.12.1 indents a hardline like the *next* document; libflux's formatter relies on 0.11's
    # behaviour (else string literals get re-indented and comment layout changes): restore it
    (cd "$CACHE/pretty-rust" && patch -s -p1 < "$HERE/pretty-0.12-hardline.patch")
    rm -f "$CACHE/flux-src/libflux/Cargo.lock"
    (cd "$CACHE/flux-src/libflux" && patch -s -p1 < "$HERE/libflux-debian-crates.patch" && patch -s -p1 < "$HERE/libflux-no-salsa.patch")
    sed -i "s/^flatbuffers = \"24.3.25\"/flatbuffers = \"$(sed -n 's/^version = "\(.*\)"/\1/p' "$CACHE/flatbuffers-rust/Cargo.toml" | head -1)\"/" \
      "$CACHE/flux-src/libflux/flux-core/Cargo.toml" "$CACHE/flux-src/libflux/flux/Cargo.toml"
    printf '\n[patch.crates-io]\nflatbuffers = { path = "%s" }\npretty = { path = "%s" }\n' \
      "$CACHE/flatbuffers-rust" "$CACHE/pretty-rust" >> "$CACHE/flux-src/libflux/Cargo.toml"
    mkdir -p "$CACHE/cargo-home"
    cat > "$CACHE/cargo-home/config.toml" <<EOF
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "$REG"
[net]
offline = true
EOF
    (cd "$CACHE/flux-src/libflux" && CARGO_HOME="$CACHE/cargo-home" CARGO_TARGET_DIR="$CACHE/cargo-target" \
       cargo build --release --offline --target x86_64-unknown-linux-gnu -p flux 2>&1 | tail -2)
    cp "$CACHE/flux-src/libflux/Cargo.lock" "$CACHE/libflux-Cargo.lock"
    mkdir -p "$CACHE/libflux/lib" "$CACHE/libflux/pkgconfig"
    cp -r "$CACHE/flux-src/libflux/include" "$CACHE/libflux/"
    cp "$CACHE/cargo-target/x86_64-unknown-linux-gnu/release/libflux.a" "$CACHE/libflux/lib/"
    cat > "$CACHE/libflux/pkgconfig/flux.pc" <<EOF
prefix=$CACHE/libflux
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: Flux
Version: ${FLUX_VERSION#v}
Description: Library for the InfluxData Flux engine
Libs: -L\${libdir} -lflux -ldl -lm
Cflags: -I\${includedir}
EOF
    rm -rf "$CACHE/cargo-target" "$CACHE/flux-src"   # keep only the .a (saves ~1 GB)
  fi

  # 4. influxd (Go + cgo), no UI assets (built without the "assets" tag -> static/TODO.go stub)
  log "go: building influxd"
  rm -rf "$CACHE/influxdb-src" && cp -r "$idir" "$CACHE/influxdb-src" && chmod -R u+w "$CACHE/influxdb-src"
  mkdir -p "$CACHE/bin"
  (cd "$CACHE/influxdb-src" && PKG_CONFIG=pkg-config PKG_CONFIG_PATH="$CACHE/libflux/pkgconfig" \
     go build -tags sqlite_foreign_keys,sqlite_json \
       -ldflags "-s -w -X main.version=${INFLUXDB_VERSION#v} -X main.commit=offline" \
       -o "$BIN.tmp" ./cmd/influxd)
  mv "$BIN.tmp" "$BIN"
  rm -rf "$CACHE/influxdb-src"
  log "built $BIN ($(du -h "$BIN" | cut -f1))"
}

smoke() {
  local port=${PORT:-18097} dir pid U t0 t1 fail=0
  dir=$(mktemp -d -t influxd-smoke.XXXXXX); U=http://127.0.0.1:$port
  t0=$(date +%s.%N)
  "$BIN" --bolt-path="$dir/influxd.bolt" --engine-path="$dir/engine" --sqlite-path="$dir/influxd.sqlite" \
    --http-bind-address="127.0.0.1:$port" --reporting-disabled --log-level=error > "$dir/influxd.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$U/health" && break; sleep 0.05; done
  t1=$(date +%s.%N); log "ready after $(python3 -c "print(round($t1-$t0,2))") s: $(curl -s "$U/health")"
  J() { python3 -c "import sys,json; d=json.load(sys.stdin); print($1)"; }
  check() { if [ "$2" = "$3" ]; then echo "ok   $1 ($2)"; else echo "FAIL $1: got '$2', want '$3'"; fail=1; fi; }
  Q() { curl -sf -XPOST "$U/api/v2/query?org=testorg" -H "Authorization: Token $1" -H 'Content-Type: application/vnd.flux' --data "$2"; }
  local S ORG BID TOK AID AT='Authorization: Token admintoken' now out
  S=$(curl -sf -XPOST "$U/api/v2/setup" -H 'Content-Type: application/json' \
       -d '{"username":"admin","password":"adminpassword","org":"testorg","bucket":"init","token":"admintoken"}')
  ORG=$(J 'd["org"]["id"]' <<<"$S")
  BID=$(curl -sf -XPOST "$U/api/v2/buckets" -H "$AT" -H 'Content-Type: application/json' \
       -d "{\"orgID\":\"$ORG\",\"name\":\"lambda\",\"retentionRules\":[]}" | J 'd["id"]')
  A=$(curl -sf -XPOST "$U/api/v2/authorizations" -H "$AT" -H 'Content-Type: application/json' -d "{\"orgID\":\"$ORG\",\"permissions\":[
      {\"action\":\"read\",\"resource\":{\"type\":\"buckets\",\"id\":\"$BID\",\"orgID\":\"$ORG\"}},
      {\"action\":\"write\",\"resource\":{\"type\":\"buckets\",\"id\":\"$BID\",\"orgID\":\"$ORG\"}}]}")
  TOK=$(J 'd["token"]' <<<"$A"); AID=$(J 'd["id"]' <<<"$A")
  echo "setup: org=$ORG bucket=$BID scoped-auth=$AID"
  now=$(date +%s)
  check "write (scoped token)" "$(printf 'cpu,host=a usage=1.5,idle=90 %s\ncpu,host=b usage=2.5,idle=80 %s\ncpu,host=a usage=3.5,idle=70 %s\n' $((now-20)) $((now-10)) "$now" |
    curl -s -o /dev/null -w '%{http_code}' -XPOST "$U/api/v2/write?org=testorg&bucket=lambda&precision=s" -H "Authorization: Token $TOK" --data-binary @-)" 204
  echo "--- query: v1.fieldsAsCols():"
  out=$(Q "$TOK" 'import "influxdata/influxdb/v1"
from(bucket:"lambda") |> range(start:-1h) |> filter(fn:(r) => r._measurement == "cpu") |> v1.fieldsAsCols()'); echo "$out"
  check "fieldsAsCols rows" "$(grep -c ',cpu,' <<<"$out")" 3
  echo "--- query: aggregateWindow + v1.fieldsAsCols():"
  out=$(Q "$TOK" 'import "influxdata/influxdb/v1"
from(bucket:"lambda") |> range(start:-1h) |> filter(fn:(r) => r._measurement == "cpu")
  |> aggregateWindow(every:1h, fn:mean, createEmpty:false) |> v1.fieldsAsCols() |> keep(columns:["_time","host","usage","idle"])'); echo "$out"
  check "aggregateWindow mean(host=a usage)" "$(awk -F, '$5=="a"{print $7}' <<<"$(tr -d '\r' <<<"$out")")" 2.5
  echo "--- query: more stdlib (strings, date, math, experimental, array, join):"
  out=$(Q "$TOK" 'import "strings"
import "date"
import "math"
import "array"
import "experimental"
a = array.from(rows:[{k:"x", v: math.sqrt(x:16.0)}])
b = array.from(rows:[{k:"x", w: strings.toUpper(v:"ok"), h: date.hour(t: 2024-01-01T05:00:00Z)}])
join(tables:{a:a, b:b}, on:["k"]) |> map(fn:(r) => ({r with e: experimental.addDuration(d:1h, to:2024-01-01T00:00:00Z)}))'); echo "$out"
  check "stdlib row" "$(tr -d '\r' <<<"$out" | awk -F, 'NR==2{print $4","$5","$6","$7","$8}')" "2024-01-01T01:00:00Z,5,x,4,OK"
  check "type error is reported (400)" "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$U/api/v2/query?org=testorg" -H "Authorization: Token $TOK" -H 'Content-Type: application/vnd.flux' --data 'import "strings" strings.toUpper(v: 1)')" 400
  check "write to other bucket with scoped token" "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$U/api/v2/write?org=testorg&bucket=init" -H "Authorization: Token $TOK" --data-binary 'x v=1')" 403
  check "delete host=a" "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$U/api/v2/delete?org=testorg&bucket=lambda" -H "Authorization: Token $TOK" -H 'Content-Type: application/json' -d '{"start":"1970-01-01T00:00:00Z","stop":"2100-01-01T00:00:00Z","predicate":"host=\"a\""}')" 204
  out=$(Q "$TOK" 'from(bucket:"lambda") |> range(start:-1h) |> filter(fn:(r) => r._field == "usage") |> count()'); echo "$out"
  check "rows left after delete" "$(tr -d '\r' <<<"$out" | awk -F, 'NR==2{print $6","$9}')" "1,b"
  # the Rust formatter (pretty crate) is used by influxd when it rewrites a task's options
  local TID TASK
  TASK=$(python3 -c 'import json,sys; print(json.dumps({"orgID": sys.argv[1], "flux": """option task = {name: "t1", every: 1h}
// a comment
from(bucket: "lambda") |> range(start: -task.every) |> filter(fn: (r) => r._measurement == "cpu" and r.host == "b")
  |> map(fn: (r) => ({r with note: "host ${r.host}
line2 ${r._field}"})) |> aggregateWindow(every: 5m, fn: mean, column: "usage") |> to(bucket: "init")"""}))' "$ORG")
  TID=$(curl -sf -XPOST "$U/api/v2/tasks" -H "$AT" -H 'Content-Type: application/json' -d "$TASK" | J 'd["id"]')
  out=$(curl -sf -XPATCH "$U/api/v2/tasks/$TID" -H "$AT" -H 'Content-Type: application/json' -d '{"every":"2h","status":"inactive"}' | J 'd["flux"]')
  echo "--- task flux after PATCH every=2h (re-formatted by libflux's Rust formatter):"; echo "$out"
  check "task re-formatted" "$(head -1 <<<"$out")" 'option task = {name: "t1", every: 2h}'
  check "multi-line string literal kept verbatim" "$(grep -c '^line2 ${r._field}"' <<<"$out")" 1
  check "list authorizations" "$(curl -sf "$U/api/v2/authorizations?orgID=$ORG" -H "$AT" | J 'len(d["authorizations"])')" 2
  check "delete authorization" "$(curl -s -o /dev/null -w '%{http_code}' -XDELETE "$U/api/v2/authorizations/$AID" -H "$AT")" 204
  check "revoked token query" "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$U/api/v2/query?org=testorg" -H "Authorization: Token $TOK" -H 'Content-Type: application/vnd.flux' --data 'buckets()')" 401
  kill "$pid"; wait "$pid" 2>/dev/null || true; trap - EXIT
  [ "$fail" = 0 ] && rm -rf "$dir" || echo "server log kept in $dir/influxd.log"
  log "smoke test $([ "$fail" = 0 ] && echo passed || echo FAILED), influxd (pid $pid) stopped"
  return "$fail"
}

case "$MODE" in
  build) [ -x "$BIN" ] && log "cached: $BIN" || build ;;
  smoke) smoke ;;
  all)   { [ -x "$BIN" ] && log "cached: $BIN"; } || build; smoke ;;
  path)  { [ -x "$BIN" ] || build >&2; } && echo "$BIN" ;;
  *) echo "usage: $0 [build|smoke|all|path]" >&2; exit 2 ;;
esac
