//go:build tools

// Package tools pins the commands built from this module (hack/build-bins.sh builds them
// with one `go build` so they share compilation). Never compiled: the build tag keeps it out.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	// The real node (hack/node.sh): a second `go build` in build-bins.sh, its own cache entry.
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
