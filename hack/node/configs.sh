# shellcheck shell=bash
# The real node's configuration files, written by hack/node.sh (sourced there: it sets NODE_DIR,
# KUBECONFIG_PATH, PKI_DIR, CTRD_ROOT, CTRD_STATE, SOCK and the NODE_* names of hack/node/node.env).

write_containerd_config() {
  mkdir -p "${NODE_DIR}/cni/net.d" "${NODE_DIR}/cni/ipam" "$(dirname "${SOCK}")"
  cat >"${NODE_DIR}/containerd.toml" <<EOF
version = 2
root = "${CTRD_ROOT}"
state = "${CTRD_STATE}"
[grpc]
  address = "${SOCK}"
[plugins."io.containerd.internal.v1.opt"]
  path = "${CTRD_ROOT}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails to start (NOTES.md).
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${NODE_DIR}/cni/net.d"
    max_conf_num = 1
EOF
  # No ipMasq: pods reach this machine and each other, nothing beyond it.
  cat >"${NODE_DIR}/cni/net.d/10-glassbox.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "glassbox",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${NODE_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "${NODE_POD_CIDR}", "gateway": "${NODE_HOST_IP}"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "${NODE_DIR}/cni/ipam"
      }
    }
  ]
}
EOF
}

write_kubelet_config() {
  # Client certificates from the apiserver (kwokctl's CA; the apiserver presents the admin cert,
  # hack/cluster.sh) are checked, and authorized through the apiserver: no anonymous kubelet API.
  # Eviction and image GC thresholds are minimal: the images are built here and cannot be re-pulled,
  # and the disk is the machine's own, shared with its builds: a percentage of it (the default 10%,
  # even 1%) put the node under DiskPressure, tainted for 5 minutes, while other work filled it.
  cat >"${NODE_DIR}/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${SOCK}
address: ${NODE_HOST_IP}
readOnlyPort: 0
healthzPort: 0
oomScoreAdj: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI_DIR}/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [${NODE_HOST_IP}]
clusterDomain: ${NODE_CLUSTER_DOMAIN}
podLogsDir: ${NODE_DIR}/pod-logs
evictionHard: {memory.available: 100Mi, nodefs.available: 100Mi, imagefs.available: 100Mi, nodefs.inodesFree: 1%}
evictionPressureTransitionPeriod: 10s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
failSwapOn: false
EOF
}

write_proxy_and_dns_configs() {
  # Conntrack and localhost-NodePort settings left as the host has them (0 = do not touch).
  cat >"${NODE_DIR}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: ${KUBECONFIG_PATH}}
hostnameOverride: ${NODE_NAME}
clusterCIDR: ${NODE_POD_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
nodePortAddresses: [${NODE_HOST_IP}/32]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 0s}
EOF
  # Cluster names only: nothing is forwarded to a resolver beyond this machine.
  cat >"${NODE_DIR}/Corefile" <<EOF
.:53 {
    bind ${NODE_HOST_IP}
    errors
    kubernetes ${NODE_CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${KUBECONFIG_PATH}
        pods insecure
        ttl 5
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
EOF
}

write_configs() {
  write_containerd_config
  write_kubelet_config
  write_proxy_and_dns_configs
}
