#!/usr/bin/env bash
# Stops the gateway, OSD and monitor that rgw-start.sh started under DIR and removes DIR.
# Only processes whose command line names DIR/ceph.conf are signalled (a pid file can be stale).
set -uo pipefail
DIR=${1:?usage: rgw-stop.sh DIR}
[ -d "$DIR" ] || exit 0
DIR=$(cd "$DIR" && pwd)
[ -f "$DIR/.molvault-rgw" ] || { echo "[rgw-stop] $DIR was not made by rgw-start.sh; left alone" >&2; exit 1; }
pids=()
for f in "$DIR"/run/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f" 2>/dev/null) || continue
  [[ "$pid" =~ ^[0-9]+$ ]] || continue
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/ceph.conf" && pids+=("$pid")
done
if [ ${#pids[@]} -gt 0 ]; then
  # The data is thrown away: no graceful shutdown, which costs seconds per daemon.
  kill -KILL "${pids[@]}" 2>/dev/null
  for _ in $(seq 1 100); do
    alive=0
    for p in "${pids[@]}"; do st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) && [ "$st" != Z ] && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.05
  done
fi
rm -rf -- "$DIR"
