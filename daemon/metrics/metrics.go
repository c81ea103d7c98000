// Package metrics serves the daemon's counters in the Prometheus text
// format on a loopback address: every stage's counts as
// kubearmor_<stage>_<name>_total, levels (gauges) without the suffix.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
)

// Write writes counters in the Prometheus text exposition format.
func Write(w io.Writer, counters []*hostpb.Counter) error {
	for _, c := range counters {
		name := metricName(c)
		typ := "counter"
		if c.Gauge {
			typ = "gauge"
		}
		if _, err := fmt.Fprintf(w, "# TYPE %s %s\n%s %d\n", name, typ, name, c.Value); err != nil {
			return err
		}
	}
	return nil
}

var invalid = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func metricName(c *hostpb.Counter) string {
	name := "kubearmor_" + invalid.ReplaceAllString(c.Stage+"_"+c.Name, "_")
	if !c.Gauge {
		name += "_total"
	}
	return name
}

// Serve serves GET /metrics on addr until ctx ends.
func Serve(ctx context.Context, addr string, counters func() []*hostpb.Counter, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := Write(w, counters()); err != nil {
			log.Debug("metrics response not written", "error", err)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("metrics on %s: %w", addr, err)
}
