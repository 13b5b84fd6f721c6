//go:build tools

// Dapr's control plane, built by scripts/k8s/build from the same module and
// version as daprd for the Kubernetes images (deploy/): listed so that
// go.sum covers them.
package main

import (
	_ "github.com/dapr/dapr/cmd/injector"
	_ "github.com/dapr/dapr/cmd/operator"
	_ "github.com/dapr/dapr/cmd/placement"
	_ "github.com/dapr/dapr/cmd/sentry"
)
