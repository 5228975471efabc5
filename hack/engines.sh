#!/usr/bin/env bash
# The engines for real: KubeRay's operator, the JobSet controller and KServe's controller (in
# RawDeployment mode, no ingress) as host processes against a running test cluster, so RayJobs,
# JobSets and InferenceServices are turned into pods by the code that does it in production instead
# of statuses patched by hand. hack/cluster.sh calls it when GLASSBOX_ENGINES=1; never use it on the
# KWOK test cluster whose tests patch those statuses.
#
# Usage: hack/engines.sh up|down|status
#   up      start the three controllers (each once; a running one is kept), then register their
#           admission webhooks: a url: clientConfig to 127.0.0.1 (the apiserver is a host process)
#           with the CA of a certificate made here (openssl), so the webhooks are served by these
#           processes. Leader election off; metrics and health on free loopback ports.
#   down    delete the webhook configurations (while the cluster answers), stop the processes,
#           remove the state directory. Safe to repeat.
#   status  each controller's pid and health
#   storage-container IMAGE  print the ClusterStorageContainer up registers (KServe's storage
#           initializer for s3:// URIs, run from IMAGE)
#   webhooks  print the webhook configurations up registers (makes the certificates and picks the
#           ports in the state dir if missing; needs no cluster)
# Environment: the same as hack/cluster.sh (GLASSBOX_CACHE, GLASSBOX_CLUSTER_NAME,
# GLASSBOX_CLUSTER_DIR) plus
#   GLASSBOX_ENGINES_KSERVE=0               leave KServe's controller out
#   GLASSBOX_ENGINES_S3_ENDPOINT            http://host:port of the S3 server as pods reach it
#                                           (hack/cluster.sh passes its own): KServe's storage
#                                           initializer downloads s3:// model URIs from it
#   GLASSBOX_KSERVE_STORAGE_INITIALIZER     image of that initializer. No registry is reachable
#                                           here, so the default is the glassbox serving image
#                                           (hack/images.sh refs serving) running a small
#                                           downloader (ClusterStorageContainer glassbox-s3);
#                                           kserve/storage-initializer:${KSERVE_VERSION} where
#                                           that cannot be computed
# State (pids, ports, logs, certificates, rendered configs): ${DIR}/engines.
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HACK}/versions.env"

CACHE="${GLASSBOX_CACHE:-${HOME}/.cache/glassbox}"
NAME="${GLASSBOX_CLUSTER_NAME:-glassbox-test}"
DIR="${GLASSBOX_CLUSTER_DIR:-${CACHE}/clusters/${NAME}}"
KUBECONFIG_PATH="${DIR}/kwok/clusters/${NAME}/kubeconfig.yaml"
STATE="${DIR}/engines"
CERTS="${STATE}/certs"
WITH_KSERVE="${GLASSBOX_ENGINES_KSERVE:-1}"
S3_ENDPOINT="${GLASSBOX_ENGINES_S3_ENDPOINT:-}"
# The namespace KServe's controller reads its inferenceservice-config from (its POD_NAMESPACE).
KSERVE_NS=kserve
# Webhook configuration names: ours, so down deletes exactly these.
WEBHOOKS_MUTATING=(glassbox-engines-jobset glassbox-engines-kserve)
WEBHOOKS_VALIDATING=(glassbox-engines-jobset glassbox-engines-kserve)

log() { echo "engines: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

declare -A B=()
load_paths() {
  local line
  while IFS= read -r line; do B["${line%%=*}"]="${line#*=}"; done < <("${HACK}/build-bins.sh" --print)
}
kubectl_() { "${B[kubectl]}" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }
cluster_up() { [[ -f "${KUBECONFIG_PATH}" ]] && kubectl_ get --raw /readyz >/dev/null 2>&1; }

engines() {
  echo ray-operator jobset-controller
  if [[ "${WITH_KSERVE}" != "0" ]]; then echo kserve-manager; fi
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then echo "${p}"; return 0; fi
  done
  die "no free port found"
}

running() { [[ -f "${STATE}/$1.pid" ]] && kill -0 "$(cat "${STATE}/$1.pid")" 2>/dev/null; }

# port NAME KIND: a loopback port for one engine's listener, chosen once and kept in the state dir.
port() {
  local f="${STATE}/$1.$2.port"
  [[ -f "${f}" ]] || free_port >"${f}"
  cat "${f}"
}

make_certs() {
  [[ -f "${CERTS}/tls.crt" ]] && return 0
  mkdir -p "${CERTS}"
  # A CA of our own and a serving certificate for 127.0.0.1 signed by it; the webhook
  # configurations carry the CA. Nothing leaves the state directory.
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=glassbox-engines-ca" \
    -keyout "${CERTS}/ca.key" -out "${CERTS}/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "${CERTS}/tls.key" -out "${CERTS}/tls.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"${CERTS}/ext.cnf"
  openssl x509 -req -in "${CERTS}/tls.csr" -CA "${CERTS}/ca.crt" -CAkey "${CERTS}/ca.key" -CAcreateserial \
    -days 30 -extfile "${CERTS}/ext.cnf" -out "${CERTS}/tls.crt" 2>/dev/null
  chmod 0600 "${CERTS}"/*.key
}

# start NAME ENV... -- ARGV...: run one engine in its own session, log to the state dir.
start() {
  local name="$1"; shift
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  if running "${name}"; then log "${name} already running (pid $(cat "${STATE}/${name}.pid"))"; return 0; fi
  env KUBECONFIG="${KUBECONFIG_PATH}" "${envs[@]}" setsid "$@" >>"${STATE}/${name}.log" 2>&1 </dev/null &
  echo $! >"${STATE}/${name}.pid"
}

start_kuberay() {
  # -use-kubernetes-proxy: a RayJob's status comes from the head's dashboard, which KubeRay reaches
  # by the head Service's cluster DNS name; a host process cannot resolve it, so it goes through the
  # apiserver's service proxy instead (KubeRay's own option for an operator outside the cluster).
  start ray-operator -- "${B[ray-operator]}" \
    -metrics-addr "127.0.0.1:$(port ray-operator metrics)" \
    -health-probe-bind-address "127.0.0.1:$(port ray-operator health)" \
    -enable-leader-election=false -use-kubernetes-proxy
}

start_jobset() {
  cat >"${STATE}/jobset-config.yaml" <<EOF
apiVersion: config.jobset.x-k8s.io/v1alpha1
kind: Configuration
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
webhook:
  host: 127.0.0.1
  port: $(port jobset-controller webhook)
  certDir: ${CERTS}
metrics:
  bindAddress: 127.0.0.1:$(port jobset-controller metrics)
health:
  healthProbeBindAddress: 127.0.0.1:$(port jobset-controller health)
EOF
  start jobset-controller -- "${B[jobset-controller]}" --config "${STATE}/jobset-config.yaml" --zap-devel=false
}

# The image of KServe's storage initializer (see GLASSBOX_KSERVE_STORAGE_INITIALIZER above).
storage_initializer() {
  local ref
  if [[ -n "${GLASSBOX_KSERVE_STORAGE_INITIALIZER:-}" ]]; then echo "${GLASSBOX_KSERVE_STORAGE_INITIALIZER}"; return; fi
  if ref="$("${HACK}/images.sh" refs serving 2>/dev/null)" && [[ "${ref}" == serving=* ]]; then echo "${ref#serving=}"; return; fi
  echo "kserve/storage-initializer:${KSERVE_VERSION}"
}

# KServe's storage-initializer contract (args: SOURCE_URI DEST_DIR; the credentials in
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the endpoint in AWS_ENDPOINT_URL, set by KServe's pod
# webhook from the service account's Secret and this ConfigMap) with the minio client every
# glassbox image has: every object under the URI's prefix.
# shellcheck disable=SC2016
DOWNLOADER='import os, sys, urllib.parse as u
from pathlib import Path
from minio import Minio
src, dest = sys.argv[1], Path(sys.argv[2])
s, ep = u.urlparse(src), u.urlparse(os.environ["AWS_ENDPOINT_URL"])
prefix = s.path.strip("/")
c = Minio(ep.netloc, access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"], secure=ep.scheme == "https")
n = 0
for o in c.list_objects(s.netloc, prefix=prefix + "/", recursive=True):
    c.fget_object(s.netloc, o.object_name, str(dest / o.object_name[len(prefix) + 1:]))
    n += 1
print(f"storage-initializer: {n} objects from {src} to {dest}")
sys.exit(0 if n else 1)'

# storage_container IMAGE: the ClusterStorageContainer that runs DOWNLOADER for s3:// URIs, under
# the restricted Pod Security profile (KServe's own init container sets no securityContext).
storage_container() {
  local py
  py="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "${DOWNLOADER}")"
  cat <<EOF
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterStorageContainer
metadata:
  name: glassbox-s3
spec:
  supportedUriFormats: [{prefix: "s3://"}]
  workloadType: initContainer
  container:
    name: storage-initializer
    image: $1
    imagePullPolicy: IfNotPresent
    command: ["python", "-c", ${py}]
    securityContext:
      runAsNonRoot: true
      runAsUser: 65532
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
EOF
}

kserve_config() {
  local image s3_host="" s3_https=0
  image="$(storage_initializer)"
  if [[ -n "${S3_ENDPOINT}" ]]; then
    s3_host="${S3_ENDPOINT#*://}"
    if [[ "${S3_ENDPOINT}" == https://* ]]; then s3_https=1; fi
  fi
  # RawDeployment (plain Deployment + Service, no Knative), no Ingress or Istio objects. The keys
  # the controller and its pod mutator parse; values as in KServe's own default ConfigMap, except
  # the URL: with no ingress, status.url names the predictor Service's cluster DNS name (the
  # address in-cluster clients use) instead of a host on a gateway that does not exist.
  kubectl_ create namespace "${KSERVE_NS}" --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  cat >"${STATE}/kserve-config.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: inferenceservice-config
  namespace: ${KSERVE_NS}
data:
  deploy: '{"defaultDeploymentMode": "RawDeployment"}'
  ingress: |-
    {"ingressGateway": "knative-serving/knative-ingress-gateway", "ingressDomain": "svc.cluster.local",
     "ingressClassName": "istio", "domainTemplate": "{{ .Name }}-predictor.{{ .Namespace }}.{{ .IngressDomain }}",
     "urlScheme": "http", "disableIstioVirtualHost": true, "disableIngressCreation": true}
  storageInitializer: |-
    {"image": "${image}", "memoryRequest": "100Mi", "memoryLimit": "1Gi",
     "cpuRequest": "100m", "cpuLimit": "1", "caBundleConfigMapName": "",
     "caBundleVolumeMountPath": "/etc/ssl/custom-certs", "enableDirectPvcVolumeMount": true,
     "enableModelcar": false, "cpuModelcar": "10m", "memoryModelcar": "15Mi", "uidModelcar": 1010}
  credentials: |-
    {"storageSpecSecretName": "storage-config",
     "storageSecretNameAnnotation": "serving.kserve.io/storageSecretName",
     "gcs": {"gcsCredentialFileName": "gcloud-application-credentials.json"},
     "s3": {"s3AccessKeyIDName": "AWS_ACCESS_KEY_ID", "s3SecretAccessKeyName": "AWS_SECRET_ACCESS_KEY",
            "s3Endpoint": "${s3_host}", "s3UseHttps": "${s3_https}", "s3VerifySSL": "${s3_https}"}}
  agent: '{"image": "kserve/agent:${KSERVE_VERSION}", "memoryRequest": "100Mi", "memoryLimit": "1Gi", "cpuRequest": "100m", "cpuLimit": "1"}'
  logger: '{"image": "kserve/agent:${KSERVE_VERSION}", "memoryRequest": "100Mi", "memoryLimit": "1Gi", "cpuRequest": "100m", "cpuLimit": "1", "defaultUrl": "http://default-broker"}'
  batcher: '{"image": "kserve/agent:${KSERVE_VERSION}", "memoryRequest": "1Gi", "memoryLimit": "1Gi", "cpuRequest": "1", "cpuLimit": "1", "maxBatchSize": "32", "maxLatency": "5000"}'
  router: '{"image": "kserve/router:${KSERVE_VERSION}", "memoryRequest": "100Mi", "memoryLimit": "1Gi", "cpuRequest": "100m", "cpuLimit": "1", "imagePullPolicy": "IfNotPresent"}'
  explainers: '{"art": {"image": "kserve/art-explainer", "defaultImageVersion": "${KSERVE_VERSION}"}}'
  metricsAggregator: '{"enableMetricAggregation": "false", "enablePrometheusScraping": "false"}'
  localModel: '{"enabled": false, "jobNamespace": "kserve-localmodel-jobs", "defaultJobImage": "${image}", "fsGroup": 1000}'
  security: '{"autoMountServiceAccountToken": true}'
EOF
  kubectl_ apply --server-side --field-manager=glassbox-engines -f "${STATE}/kserve-config.yaml" >/dev/null
  if [[ "${image}" != kserve/* ]]; then
    storage_container "${image}" >"${STATE}/storage-container.yaml"
    kubectl_ apply --server-side --force-conflicts --field-manager=glassbox-engines -f "${STATE}/storage-container.yaml" >/dev/null
  fi
}

start_kserve() {
  # KServe's manager has no flag for its webhook certificates: controller-runtime reads them from
  # $TMPDIR/k8s-webhook-server/serving-certs, so TMPDIR points into the state dir. Its webhook
  # listener takes a port only (it binds every interface); the apiserver calls 127.0.0.1.
  local tmp="${STATE}/kserve-tmp"
  mkdir -p "${tmp}/k8s-webhook-server"
  ln -sfn "${CERTS}" "${tmp}/k8s-webhook-server/serving-certs"
  kubectl_ apply --server-side --field-manager=glassbox-engines -f "${B[engine-crds]}" >/dev/null
  kubectl_ wait --for=condition=Established -f "${B[engine-crds]}" --timeout=120s >/dev/null
  kserve_config
  start kserve-manager TMPDIR="${tmp}" POD_NAMESPACE="${KSERVE_NS}" -- "${B[kserve-manager]}" \
    -metrics-addr "127.0.0.1:$(port kserve-manager metrics)" \
    -health-probe-addr "127.0.0.1:$(port kserve-manager health)" \
    -webhook-port "$(port kserve-manager webhook)" \
    -leader-elect=false
}

wait_healthy() {
  local name="$1" url
  url="http://127.0.0.1:$(port "${name}" health)/readyz"
  for _ in $(seq 1 600); do
    if curl -sf -o /dev/null "${url}"; then return 0; fi
    running "${name}" || { tail -n 40 "${STATE}/${name}.log" >&2; die "${name} exited (log ${STATE}/${name}.log)"; }
    sleep 0.2
  done
  tail -n 40 "${STATE}/${name}.log" >&2
  die "${name} not ready after 120s (${url}; log ${STATE}/${name}.log)"
}

# hook NAME PORT PATH RULE_YAML [SELECTOR_YAML]: one webhook entry calling the host process.
hook() {
  local ca
  ca="$(base64 -w0 <"${CERTS}/ca.crt")"
  cat <<EOF
- name: $1
  admissionReviewVersions: ["v1", "v1beta1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  clientConfig:
    url: https://127.0.0.1:$2$3
    caBundle: ${ca}
  rules:
$4
${5:-}
EOF
}

rule() { printf '  - apiGroups: ["%s"]\n    apiVersions: ["%s"]\n    operations: [%s]\n    resources: ["%s"]\n' "$@"; }

# webhooks_yaml: the Mutating/ValidatingWebhookConfigurations, calling the host processes.
webhooks_yaml() {
  local js ks jobset_pods
  js="$(port jobset-controller webhook)"
  # Only the pods of a JobSet (the objectSelector of JobSet's own kustomize patch).
  jobset_pods=$'  objectSelector:\n    matchExpressions:\n    - {key: jobset.sigs.k8s.io/jobset-name, operator: Exists}'
  {
    echo "apiVersion: admissionregistration.k8s.io/v1"
    echo "kind: MutatingWebhookConfiguration"
    echo "metadata: {name: glassbox-engines-jobset}"
    echo "webhooks:"
    hook mjobset.kb.io "${js}" /mutate-jobset-x-k8s-io-v1alpha2-jobset "$(rule jobset.x-k8s.io v1alpha2 '"CREATE"' jobsets)"
    hook mpod.kb.io "${js}" /mutate--v1-pod "$(rule '' v1 '"CREATE"' pods)" "${jobset_pods}"
    echo "---"
    echo "apiVersion: admissionregistration.k8s.io/v1"
    echo "kind: ValidatingWebhookConfiguration"
    echo "metadata: {name: glassbox-engines-jobset}"
    echo "webhooks:"
    hook vjobset.kb.io "${js}" /validate-jobset-x-k8s-io-v1alpha2-jobset "$(rule jobset.x-k8s.io v1alpha2 '"CREATE", "UPDATE"' jobsets)"
    hook vpod.kb.io "${js}" /validate--v1-pod "$(rule '' v1 '"CREATE"' pods)" "${jobset_pods}"
    if [[ "${WITH_KSERVE}" != "0" ]]; then
      ks="$(port kserve-manager webhook)"
      echo "---"
      echo "apiVersion: admissionregistration.k8s.io/v1"
      echo "kind: MutatingWebhookConfiguration"
      echo "metadata: {name: glassbox-engines-kserve}"
      echo "webhooks:"
      hook inferenceservice.kserve-webhook-server.defaulter "${ks}" /mutate-serving-kserve-io-v1beta1-inferenceservice \
        "$(rule serving.kserve.io v1beta1 '"CREATE", "UPDATE"' inferenceservices)"
      # The storage-initializer injection, on the pods of an InferenceService only.
      hook inferenceservice.kserve-webhook-server.pod-mutator "${ks}" /mutate-pods "$(rule '' v1 '"CREATE"' pods)" \
        $'  reinvocationPolicy: IfNeeded\n  objectSelector:\n    matchExpressions:\n    - {key: serving.kserve.io/inferenceservice, operator: Exists}'
      echo "---"
      echo "apiVersion: admissionregistration.k8s.io/v1"
      echo "kind: ValidatingWebhookConfiguration"
      echo "metadata: {name: glassbox-engines-kserve}"
      echo "webhooks:"
      hook inferenceservice.kserve-webhook-server.validator "${ks}" /validate-serving-kserve-io-v1beta1-inferenceservice \
        "$(rule serving.kserve.io v1beta1 '"CREATE", "UPDATE"' inferenceservices)"
      hook servingruntime.kserve-webhook-server.validator "${ks}" /validate-serving-kserve-io-v1alpha1-servingruntime \
        "$(rule serving.kserve.io v1alpha1 '"CREATE", "UPDATE"' servingruntimes)"
      hook clusterservingruntime.kserve-webhook-server.validator "${ks}" /validate-serving-kserve-io-v1alpha1-clusterservingruntime \
        "$(rule serving.kserve.io v1alpha1 '"CREATE", "UPDATE"' clusterservingruntimes)"
    fi
  }
}

register_webhooks() {
  local out="${STATE}/webhooks.yaml"
  webhooks_yaml >"${out}"
  kubectl_ apply --server-side --force-conflicts --field-manager=glassbox-engines -f "${out}" >/dev/null
}

up() {
  local start=${SECONDS} name
  load_paths
  cluster_up || die "cluster ${NAME} is not running (${KUBECONFIG_PATH}); run hack/cluster.sh up"
  for name in $(engines); do [[ -x "${B[${name}]}" ]] || die "missing ${B[${name}]}: run hack/build-bins.sh"; done
  mkdir -p "${STATE}"
  make_certs
  start_kuberay
  start_jobset
  if [[ "${WITH_KSERVE}" != "0" ]]; then start_kserve; fi
  for name in $(engines); do wait_healthy "${name}"; done
  # Webhooks last: with failurePolicy Fail they must never point at a listener that is not up.
  register_webhooks
  log "up in $((SECONDS - start))s: $(engines | tr '\n' ' ')(logs in ${STATE})"
}

down() {
  load_paths
  local name pid
  if cluster_up; then
    kubectl_ delete mutatingwebhookconfiguration "${WEBHOOKS_MUTATING[@]}" --ignore-not-found >/dev/null || true
    kubectl_ delete validatingwebhookconfiguration "${WEBHOOKS_VALIDATING[@]}" --ignore-not-found >/dev/null || true
  fi
  for name in ray-operator jobset-controller kserve-manager; do
    running "${name}" || continue
    pid="$(cat "${STATE}/${name}.pid")"
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pid}" 2>/dev/null || true
  done
  rm -rf "${STATE}"
  log "engines of ${NAME} down"
}

status() {
  load_paths
  local name ok=0
  for name in $(engines); do
    if running "${name}" && [[ -f "${STATE}/${name}.health.port" ]] && curl -sf -o /dev/null "http://127.0.0.1:$(port "${name}" health)/readyz"; then
      log "${name}: ready (pid $(cat "${STATE}/${name}.pid"), log ${STATE}/${name}.log)"
    else
      log "${name}: not running"; ok=1
    fi
  done
  return "${ok}"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  webhooks) mkdir -p "${STATE}"; make_certs; webhooks_yaml ;;
  storage-container) storage_container "${2:?usage: $0 storage-container IMAGE}" ;;
  *) echo "usage: $0 up|down|status|webhooks|storage-container IMAGE" >&2; exit 2 ;;
esac
