// Command placement is Dapr's actor placement service (github.com/dapr/dapr
// v1.18.3 cmd/placement), built like our daprd and sentry: scripts/setup
// copies upstream's cmd/placement/app/app.go here as zz_upstream_app.go with
// one change, so that it listens on loopback only: the healthz server is
// loopback.HealthzServer, which honours --healthz-listen-address (upstream's
// pkg/healthz/server always listens on every interface). That drops the
// optional /placement/state handler (off unless --metadata-enabled).
// The gRPC and metrics servers already honour --listen-address.
package main

import "github.com/example/dapr-wasi-template/daprd/loopback"

var healthzServer = loopback.HealthzServer

func main() {
	Run()
}
