#!/bin/bash
# Cold start of 3 fresh local nodes hosting N new groups each (a diagnostic, NOT the perf
# harness: it reads the nodes' log lines on a script's clock). Every 5 s up to T seconds it
# prints how many groups have had a leader and how many "role changed" lines the three
# nodes logged; at the end each node's resident memory.
#   BIN     server binary (default: target/release/dledger, built by `cargo build --release`)
#   N       groups (1000)          SHARDS  shards per node (1)
#   SEG     data segment bytes (1 MiB, what `bench --idle-groups 1000` uses)
#   T       seconds to watch (30)  KEEP    keep the directory when set
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/dledger}; N=${N:-1000}; SHARDS=${SHARDS:-1}
SEG=${SEG:-1048576}; T=${T:-30}
[ -x "$BIN" ] || { echo "cold-start: no server binary at $BIN (cargo build --release -p dledger-shards)" >&2; exit 2; }
D=$(mktemp -d /tmp/dledger-cold-start-XXXX)
groups=$(seq -f "G%04g" 0 $((N-1)) | paste -sd, -)
for i in 0 1 2; do
  {
    echo "brokerClusterName=ColdStart"; echo "listenPort=$((32911+i*10))"
    echo "storePathRootDir=$D/n$i"; echo "enableDLegerCommitLog=true"
    echo "dLegerGroups=$groups"
    echo "dLegerPeers=n0-127.0.0.1:42911;n1-127.0.0.1:42912;n2-127.0.0.1:42913"
    echo "dLegerSelfId=n$i"; echo "shards=$SHARDS"; echo "pinShards=false"
    echo "mappedFileSizeForEntryData=$SEG"; echo "maxBodyBytes=65536"
    echo "mappedFileSizeForEntryIndex=65536"
    k=0; for g in $(seq -f "G%04g" 0 $((N-1))); do echo "group.$g.preferredLeaderId=n$((k%3))"; k=$((k+1)); done
  } > "$D/n$i.conf"
done
pids=()
for i in 0 1 2; do
  RUST_LOG=info "$BIN" server -c "$D/n$i.conf" > "$D/n$i.log" 2>&1 &
  pids+=($!)
done
for t in $(seq 5 5 "$T"); do
  sleep 5
  led=$(grep -h "role=Leader" "$D"/n*.log | grep -o "group=[A-Za-z0-9]*" | sort -u | wc -l)
  changes=$(grep -h "role changed" "$D"/n*.log | wc -l)
  echo "t=${t}s groups_with_leader=$led role_changed_lines=$changes"
done
for i in 0 1 2; do
  echo "n$i rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/${pids[$i]}/status" 2>/dev/null)"
done
kill -9 "${pids[@]}" 2>/dev/null; wait 2>/dev/null
if [ -n "${KEEP:-}" ]; then echo "kept $D"; else rm -rf "$D"; fi
