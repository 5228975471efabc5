//go:build tools

// Package tools pins the command built from this module: KServe's controller (cmd/manager).
// Never compiled: the build tag keeps it out.
package tools

import (
	_ "github.com/kserve/kserve/cmd/manager"
)
