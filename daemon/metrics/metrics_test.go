package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		in   []*hostpb.Counter
		want string
	}{
		{"none", nil, ""},
		{"counter", []*hostpb.Counter{{Stage: "telemetry", Name: "ring_full", Value: 3}},
			"# TYPE kubearmor_telemetry_ring_full_total counter\nkubearmor_telemetry_ring_full_total 3\n"},
		{"gauge", []*hostpb.Counter{{Stage: "api", Name: "log_subscribers", Value: 2, Gauge: true}},
			"# TYPE kubearmor_api_log_subscribers gauge\nkubearmor_api_log_subscribers 2\n"},
		{"odd characters", []*hostpb.Counter{{Stage: "a-b", Name: "c.d", Value: 0}},
			"# TYPE kubearmor_a_b_c_d_total counter\nkubearmor_a_b_c_d_total 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := Write(&b, tt.in); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	n := uint64(0)
	go func() {
		done <- Serve(ctx, addr, func() []*hostpb.Counter {
			n++
			return []*hostpb.Counter{{Stage: "enforcer", Name: "denied", Value: n}}
		}, slog.New(slog.DiscardHandler))
	}()
	var body string
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if i == 200 {
			t.Fatalf("GET /metrics: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(body, "kubearmor_enforcer_denied_total 1\n") {
		t.Errorf("body %q", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
