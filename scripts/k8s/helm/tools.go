//go:build tools

// The command scripts/k8s/build builds: listed so that go.sum covers it.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
