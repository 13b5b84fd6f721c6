// Command sentry is Dapr's certificate authority (github.com/dapr/dapr
// v1.18.3 cmd/sentry), built like our daprd: scripts/setup copies upstream's
// cmd/sentry/app/app.go here as zz_upstream_app.go with two changes, so that
// sentry, like everything else in the stack, can listen on loopback only:
//
//   - the metrics server gets --metrics-listen-address, which upstream parses
//     but does not pass on;
//   - the healthz server is loopback.HealthzServer, which honours
//     --healthz-listen-address; upstream's pkg/healthz/server always listens
//     on every interface.
package main

import "github.com/example/dapr-wasi-template/daprd/loopback"

var healthzServer = loopback.HealthzServer

func main() {
	Run()
}
