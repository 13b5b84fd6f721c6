//go:build tools

// Package tools pins the dapr CLI so `go build github.com/dapr/cli` resolves
// it from this module (with its replace directives) instead of `go install`,
// which the module proxy here refuses for this module.
package tools

import _ "github.com/dapr/cli"
