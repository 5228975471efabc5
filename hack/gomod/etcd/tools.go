//go:build tools

// Package tools pins the command built from this module: etcd's server has package main
// at its module root. Never compiled: the build tag keeps it out.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
