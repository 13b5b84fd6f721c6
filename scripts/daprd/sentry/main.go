// Command sentry is Dapr's certificate authority (github.com/dapr/dapr
// v1.18.3 cmd/sentry), built like our daprd: scripts/setup copies upstream's
// cmd/sentry/app/app.go here as zz_upstream_app.go with two changes, so that
// sentry, like everything else in the stack, can listen on loopback only:
//
//   - the metrics server gets --metrics-listen-address, which upstream parses
//     but does not pass on;
//   - the healthz server is healthzServer below, which honours
//     --healthz-listen-address; upstream's pkg/healthz/server always listens
//     on every interface.
package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dapr/dapr/pkg/healthz"
)

func main() {
	Run()
}

// healthzServer serves GET /healthz (200 when every healthz target is
// ready, else 503), as upstream's server does, on addr:port.
func healthzServer(addr string, port int, h healthz.Healthz) func(context.Context) error {
	return func(ctx context.Context) error {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !h.IsReady() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(stop); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}
	}
}
