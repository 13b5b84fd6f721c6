//go:build tools

// The command scripts/k8s/build builds: listed so that go.sum covers it.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
