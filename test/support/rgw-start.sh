#!/usr/bin/env bash
# A throw-away single-node Ceph RADOS Gateway (S3) for molvault's object-store tests and benchmarks.
#
#   test/support/rgw-start.sh DIR [PORT]     prints `KEY=value` lines (also in DIR/s3.env)
#   test/support/rgw-stop.sh DIR             kills the daemons and removes DIR
#
# From nothing, all under DIR (which must not exist or be empty): one monitor, one memstore OSD
# (data in RAM, pool size 1), the gateway on 127.0.0.1:PORT (a free port when omitted), a user and
# a bucket-size quota. Needs Debian's radosgw, ceph-mon and ceph-osd (.ci/run installs them).
# Env: RGW_ACCESS_KEY / RGW_SECRET_KEY (default molvault / molvault-secret), RGW_MEMSTORE_BYTES
# (default 4 GiB), RGW_START_TIMEOUT seconds (default 60), RGW_EXTRA_ADDRESSES (space-separated
# local addresses the gateway listens on too, on the same port: the network-namespace test's veths).
set -euo pipefail

DIR=${1:?usage: rgw-start.sh DIR [PORT]}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=${2:-$(free_port)}
MON_PORT=$(free_port)
AK=${RGW_ACCESS_KEY:-molvault}
SK=${RGW_SECRET_KEY:-molvault-secret}
MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-4294967296}
TIMEOUT=${RGW_START_TIMEOUT:-60}
ENDPOINTS="endpoint=127.0.0.1:$PORT"
for addr in ${RGW_EXTRA_ADDRESSES:-}; do ENDPOINTS="$ENDPOINTS endpoint=$addr:$PORT"; done
log() { printf '[rgw-start] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for cmd in radosgw radosgw-admin ceph ceph-mon ceph-osd ceph-authtool monmaptool uuidgen curl python3; do
  command -v "$cmd" >/dev/null || die "$cmd is not installed (apt-get install radosgw ceph-mon ceph-osd)"
done
[ ! -e "$DIR" ] || [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
touch "$DIR/.molvault-rgw"   # rgw-stop.sh removes only a directory carrying this marker
mkdir -p "$DIR"/{run,log,crash,tmp,mon.a,osd.0,rgw}
C=(-c "$DIR/ceph.conf")
on_exit() {
  local rc=$?
  [ $rc -eq 0 ] && return
  log "start failed (rc=$rc); log tails:"
  for f in "$DIR"/log/*; do [ -s "$f" ] && { echo "== $f" >&2; tail -n 5 "$f" >&2; }; done
  for f in "$DIR"/run/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  true
}
trap on_exit EXIT

FSID=$(uuidgen)
# Unix socket paths are limited to 107 bytes: no admin sockets under a long DIR.
ASOK="admin socket = $DIR/run/\$name.asok"
[ ${#DIR} -le 80 ] || ASOK="admin socket ="
cat >"$DIR/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
tmp dir = $DIR/tmp
$ASOK
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/\$cluster.\$channel.log
mon data = $DIR/mon.\$id
osd data = $DIR/osd.\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
# Pool creation commits in a tenth of a second instead of one or two.
paxos propose interval = 0.05
# The default in-memory debug gathering costs the server a good share of its CPU per request.
debug osd = 0/0
debug ms = 0/0
debug memstore = 0/0
debug rados = 0/0
debug objecter = 0/0
debug monc = 0/0
debug auth = 0/0
debug finisher = 0/0
debug rgw = 0/0
debug rgw_sync = 0/0

[osd]
keyring = $DIR/osd.\$id/keyring

[client.rgw.a]
# Without tcp_nodelay every request with a body waits on Nagle and delayed ACK.
rgw frontends = beast $ENDPOINTS tcp_nodelay=1
rgw data = $DIR/rgw
# Deleted multipart data is collected after a minute, not two hours: memstore keeps it in RAM.
rgw gc obj min wait = 60
rgw gc processor period = 60
CONF

ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$DIR/keyring" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
ceph-mon "${C[@]}" -i a

OSD_UUID=$(uuidgen)
OSD_SECRET=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}' "$OSD_SECRET" >"$DIR/tmp/osd.json"
[ "$(timeout 30 ceph "${C[@]}" osd new "$OSD_UUID" -i "$DIR/tmp/osd.json")" = 0 ] || die "osd new did not give id 0"
rm -f "$DIR/tmp/osd.json"
ceph-authtool --create-keyring "$DIR/osd.0/keyring" --name osd.0 --add-key "$OSD_SECRET" >/dev/null
ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>"$DIR/log/osd-mkfs.err"
ceph-osd "${C[@]}" -i 0 2>>"$DIR/log/osd.stderr"

# The gateway creates its pools lazily, each costing the first request that needs it a pool
# creation: made up front, in one CLI session.
{ for p in .rgw.root default.rgw.log default.rgw.control default.rgw.meta \
    default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
    echo "osd pool create $p 8 8"
    echo "osd pool application enable $p rgw"
  done; } | timeout 60 ceph "${C[@]}" >"$DIR/log/pools.out" 2>&1

timeout 60 radosgw-admin "${C[@]}" user create --uid=molvault --display-name=molvault \
  --access-key="$AK" --secret-key="$SK" >/dev/null 2>"$DIR/log/user.err"
# A full memstore makes writes hang; a quota below its size makes them fail with 403 QuotaExceeded.
radosgw-admin "${C[@]}" quota set --quota-scope=user --uid=molvault --max-size=$((MEMSTORE_BYTES * 3 / 4)) >/dev/null 2>>"$DIR/log/user.err"
radosgw-admin "${C[@]}" quota enable --quota-scope=user --uid=molvault >/dev/null 2>>"$DIR/log/user.err"
radosgw "${C[@]}" -n client.rgw.a 2>>"$DIR/log/rgw.stderr"

# Ready when a signed ListBuckets answers 200 (curl's sigv4 omits x-amz-content-sha256, RGW wants it).
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
deadline=$(($(date +%s) + TIMEOUT))
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --aws-sigv4 aws:amz:us-east-1:s3 --user "$AK:$SK" \
  -H "x-amz-content-sha256: $EMPTY_SHA" "http://127.0.0.1:$PORT/" || true)" = 200 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || die "the gateway did not answer within ${TIMEOUT}s"
  sleep 0.1
done

{ echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
  echo "S3_REGION=us-east-1"
  echo "S3_ACCESS_KEY_ID=$AK"
  echo "S3_SECRET_ACCESS_KEY=$SK"
  echo "S3_FORCE_PATH_STYLE=true"
  echo "RGW_DIR=$DIR"
  echo "RGW_PID=$(cat "$DIR/run/client.rgw.a.pid" 2>/dev/null || true)"; } >"$DIR/s3.env"
cat "$DIR/s3.env"
