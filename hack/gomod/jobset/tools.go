//go:build tools

// Package tools pins the command built from this module: the JobSet controller (the module's
// root package is its main). Never compiled: the build tag keeps it out.
package tools

import (
	_ "sigs.k8s.io/jobset"
)
