#!/usr/bin/env bash
# Starts a throwaway local control plane (etcd + kube-apiserver, no kubelet,
# no controllers), like controller-runtime's envtest, and writes an admin
# kubeconfig to $STATE_DIR/kubeconfig (default target/local-cluster/).
#
# Env (see lib.sh): BBCONN_CLUSTER_DIR, BBCONN_ETCD_PORT (2379),
#   BBCONN_ETCD_PEER_PORT (2380), BBCONN_APISERVER_PORT (6443),
#   BBCONN_READY_TIMEOUT (seconds, default 60).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if pid_of kube-apiserver >/dev/null && pid_of etcd >/dev/null && apiserver_ready; then
    log "already running (https://127.0.0.1:$APISERVER_PORT); KUBECONFIG=$KUBECONFIG_PATH"
    exit 0
fi

# Half-started or stale cluster: stop leftovers and start from a clean slate.
"$CP_DIR/down.sh" >/dev/null 2>&1 || true

command -v openssl >/dev/null || { log "openssl not found"; exit 1; }
command -v curl >/dev/null || { log "curl not found"; exit 1; }

# Fail early and clearly if a port is taken (e.g. another cluster instance).
for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port 127.0.0.1:$port is already in use; set BBCONN_*_PORT to run another instance"
        exit 1
    fi
done

BIN=$("$CP_DIR/build.sh") # instant when cached
PKI=$STATE_DIR/pki
mkdir -p "$PKI" "$STATE_DIR/etcd-data"
chmod 700 "$STATE_DIR"

# --- certificates --------------------------------------------------------
# One throwaway CA signs the serving cert and the admin client cert, so the
# kubeconfig can verify the server and the server can verify the client.
log "generating certificates in $PKI"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=bbconn-local-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt"

# sign NAME SUBJECT EXTENSIONS: key + CA-signed cert.
sign() {
    local name=$1 subj=$2 ext=$3
    ossl req -new -newkey rsa:2048 -nodes -subj "$subj" \
        -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
    printf '%s\n' "$ext" >"$PKI/$name.ext"
    ossl x509 -req -days 3650 -in "$PKI/$name.csr" \
        -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
# 10.0.0.1 is the "kubernetes" Service IP from --service-cluster-ip-range.
sign serving "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default.svc"
# O=system:masters: superuser group, bypasses RBAC (what envtest's admin gets).
sign admin "/O=system:masters/CN=bbconn-admin" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
# Service-account token signing pair: needed for the TokenRequest API
# (`kubectl create token`) used by impersonation / RBAC tests.
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
chmod 600 "$PKI"/*.key

# --- etcd ----------------------------------------------------------------
# setsid: own session, so a Ctrl-C in the terminal that ran `make` does not
# kill the cluster; exec keeps $! equal to the real pid.
log "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
setsid "$BIN/etcd" \
    --name=bbconn \
    --data-dir="$STATE_DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="bbconn=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync \
    </dev/null >"$STATE_DIR/etcd.log" 2>&1 &
echo $! >"$STATE_DIR/etcd.pid"

# --- kube-apiserver ------------------------------------------------------
log "starting kube-apiserver $K8S_VERSION on https://127.0.0.1:$APISERVER_PORT"
setsid "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$PKI/serving.crt" \
    --tls-private-key-file="$PKI/serving.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer="https://127.0.0.1:$APISERVER_PORT" \
    --disable-admission-plugins=ServiceAccount \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    </dev/null >"$STATE_DIR/kube-apiserver.log" 2>&1 &
echo $! >"$STATE_DIR/kube-apiserver.pid"

# --- kubeconfig ----------------------------------------------------------
b64() { base64 -w0 <"$1"; }
cat >"$KUBECONFIG_PATH" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bbconn-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: bbconn-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: bbconn-local
  context:
    cluster: bbconn-local
    user: bbconn-admin
current-context: bbconn-local
EOF
chmod 600 "$KUBECONFIG_PATH"

# --- wait for readiness ----------------------------------------------------
timeout=${BBCONN_READY_TIMEOUT:-60}
start=$SECONDS
deadline=$((start + timeout))
until apiserver_ready; do
    for p in etcd kube-apiserver; do
        if ! pid_of "$p" >/dev/null; then
            log "$p exited during startup; last lines of $STATE_DIR/$p.log:"
            tail -n 30 "$STATE_DIR/$p.log" >&2
            exit 1
        fi
    done
    if ((SECONDS >= deadline)); then
        log "kube-apiserver not ready after ${timeout}s; last lines of $STATE_DIR/kube-apiserver.log:"
        tail -n 30 "$STATE_DIR/kube-apiserver.log" >&2
        log "processes left running; stop them with tests/controlplane/down.sh"
        exit 1
    fi
    sleep 0.5
done

log "ready after $((SECONDS - start))s: https://127.0.0.1:$APISERVER_PORT"
log "export KUBECONFIG=$KUBECONFIG_PATH"
