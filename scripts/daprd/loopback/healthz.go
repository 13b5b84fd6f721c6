// Package loopback serves a control-plane service's /healthz on the address
// it is told. Upstream's pkg/healthz/server always listens on every
// interface; sentry and placement here use this instead (their
// zz_upstream_app.go is patched by scripts/setup to call it), so that, like
// everything else in the local stack, they listen on loopback only.
package loopback

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dapr/dapr/pkg/healthz"
)

// HealthzServer serves GET /healthz (200 when every healthz target is
// ready, else 503), as upstream's server does, on addr:port.
func HealthzServer(addr string, port int, h healthz.Healthz) func(context.Context) error {
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
