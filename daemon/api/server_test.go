package api

import (
	"context"
	"errors"
	"fmt"

	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kubearmor/kubearmor-host/daemon/api/feeder"
	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

type fakeState struct{}

func (fakeState) Probe() *hostpb.ProbeReply { return &hostpb.ProbeReply{Enforcer: "BPFLSM"} }

func (fakeState) Summary(kind string) (*hostpb.SummaryReply, error) {
	if kind != "" && kind != "network" {
		return nil, fmt.Errorf("unknown summary type %q", kind)
	}
	return &hostpb.SummaryReply{Bind: []*hostpb.NetRow{{Protocol: "TCP", Port: 80, Count: 1}}, Observing: true}, nil
}

// serve starts a server on a socket in a fresh directory and returns it
// with a client connection.
func serve(t *testing.T, queue int) (*Server, *grpc.ClientConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "kubearmor.sock")
	s := New("host", queue, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Serve(ctx, ln, fakeState{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return s, conn, path
}

func TestCalls(t *testing.T) {
	_, conn, path := serve(t, 0)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %o, want 600", perm)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: %v, mode %v; want 700", err, fi.Mode())
	}
	ctx := t.Context()
	logs := feeder.NewLogServiceClient(conn)
	r, err := logs.HealthCheck(ctx, &feeder.NonceMessage{Nonce: 42})
	if err != nil || r.GetRetval() != 42 {
		t.Errorf("HealthCheck(42) = %v, %v; want 42", r.GetRetval(), err)
	}
	host := hostpb.NewHostClient(conn)
	if p, err := host.Probe(ctx, &hostpb.ProbeRequest{}); err != nil || p.GetEnforcer() != "BPFLSM" {
		t.Errorf("Probe = %v, %v", p, err)
	}
	if s, err := host.Summary(ctx, &hostpb.SummaryRequest{Type: "network"}); err != nil || len(s.GetBind()) != 1 {
		t.Errorf("Summary(network) = %v, %v", s, err)
	}
	if _, err := host.Summary(ctx, &hostpb.SummaryRequest{Type: "bogus"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Summary(bogus): %v, want InvalidArgument", err)
	}

	filters := []struct {
		name string
		call func(f string) error
		ok   []string
		bad  string
	}{
		{"WatchAlerts", func(f string) error {
			s, err := logs.WatchAlerts(ctx, &feeder.RequestMessage{Filter: f})
			return recvErr(s, err)
		}, []string{"", "all", "policy"}, "system"},
		{"WatchLogs", func(f string) error {
			s, err := logs.WatchLogs(ctx, &feeder.RequestMessage{Filter: f})
			return recvErr(s, err)
		}, []string{"", "all", "system"}, "policy"},
		{"WatchMessages", func(f string) error {
			s, err := logs.WatchMessages(ctx, &feeder.RequestMessage{Filter: f})
			return recvErr(s, err)
		}, []string{"", "all"}, "policy"},
	}
	for _, tt := range filters {
		if err := tt.call(tt.bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s(%q): %v, want InvalidArgument", tt.name, tt.bad, err)
		}
		for _, f := range tt.ok {
			if err := tt.call(f); status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("%s(%q): %v, want a stream that waits for records", tt.name, f, err)
			}
		}
	}
}

// recvErr waits briefly for the first record of a stream: a stream the
// server accepted waits (DeadlineExceeded), a refused one fails.
func recvErr[T any](s grpc.ServerStreamingClient[T], err error) error {
	if err != nil {
		return err
	}
	_, err = recvWithin(s, 200*time.Millisecond)
	return err
}

func recvWithin[T any](s grpc.ServerStreamingClient[T], d time.Duration) (*T, error) {
	type res struct {
		v   *T
		err error
	}
	c := make(chan res, 1)
	go func() {
		v, err := s.Recv()
		c <- res{v, err}
	}()
	select {
	case r := <-c:
		return r.v, r.err
	case <-time.After(d):
		return nil, status.Error(codes.DeadlineExceeded, "no record")
	}
}

// TestStalledClient: a client that stops reading loses its own records,
// counted, while another client receives every one and the writer is never
// held up; what the stalled client finally reads plus what it lost is
// exactly what was written.
func TestStalledClient(t *testing.T) {
	// Batches smaller than a queue, so that a client that keeps up loses
	// nothing; 1 KiB records, and a fixed 64 KiB flow-control window,
	// so that what the connection buffers cannot hide the overrun.
	const queue, batches, batch = 256, 50, 200
	resource := strings.Repeat("r", 1024)
	s, conn, _ := serve(t, queue)
	logs := feeder.NewLogServiceClient(conn)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stalled, err := logs.WatchLogs(ctx, &feeder.RequestMessage{Filter: "system"})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := logs.WatchLogs(ctx, &feeder.RequestMessage{Filter: "all"})
	if err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, s, 2)
	received := make(chan int32, batches*batch)
	go func() {
		for {
			l, err := reader.Recv()
			if err != nil {
				return
			}
			received <- l.HostPID
		}
	}()
	want := int32(0)
	for range batches {
		for range batch {
			want++
			if err := s.Write(record.Log{HostPID: want, Type: record.TypeHostLog, Resource: resource}); err != nil {
				t.Fatal(err)
			}
		}
		// The reading client keeps up batch by batch; the stalled one
		// reads nothing.
		for i := want - batch + 1; i <= want; i++ {
			select {
			case got := <-received:
				if got != i {
					t.Fatalf("reading client got record %d, want %d", got, i)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("reading client stuck at record %d of %d", i, want)
			}
		}
	}
	st := s.Stats().Logs
	if st.Dropped == 0 {
		t.Fatalf("the stalled client lost nothing (%+v): the test did not overrun its queue", st)
	}
	// Now the stalled client reads what reached it.
	n := uint64(0)
	last := int32(0)
	for n+st.Dropped < batches*batch {
		l, err := recvWithin(stalled, 30*time.Second)
		if err != nil {
			t.Fatalf("stalled client, after %d records (lost %d of %d): %v", n, st.Dropped, batches*batch, err)
		}
		if l.HostPID <= last {
			t.Fatalf("stalled client: record %d after %d", l.HostPID, last)
		}
		last = l.HostPID
		n++
	}
	if extra, err := recvWithin(stalled, 200*time.Millisecond); err == nil {
		t.Errorf("stalled client got record %d beyond received %d + lost %d = written %d", extra.HostPID, n, st.Dropped, batches*batch)
	}
	t.Logf("stalled client: read %d, lost %d (counted); reading client: all %d", n, st.Dropped, batches*batch)
}

func waitSubscribers(t *testing.T, s *Server, n int) {
	t.Helper()
	for i := 0; s.Stats().Logs.Subscribers < n; i++ {
		if i == 500 {
			t.Fatalf("%d log subscribers, want %d", s.Stats().Logs.Subscribers, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMessages: the daemon's own log lines at Info and above reach a
// WatchMessages client, with their attributes; Debug ones do not.
func TestMessages(t *testing.T) {
	s, conn, _ := serve(t, 0)
	var text strings.Builder
	log := slog.New(s.Messages(slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug})))
	stream, err := feeder.NewLogServiceClient(conn).WatchMessages(t.Context(), &feeder.RequestMessage{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; s.Stats().Messages.Subscribers < 1; i++ {
		if i == 500 {
			t.Fatal("no message subscriber")
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Debug("not streamed")
	log.With("version", 7).WithGroup("set").Warn("policy set applied", "rules", 3, slog.Group("by", "file", 2))
	m, err := recvWithin(stream, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "policy set applied version=7 set.rules=3 set.by.file=2"
	if m.Message != want || m.Level != "WARN" || m.Type != "Message" || m.HostName != "host" || m.Timestamp == 0 {
		t.Errorf("message %+v, want Message %q, Level WARN, Type Message, HostName host", m, want)
	}
	if !strings.Contains(text.String(), "not streamed") {
		t.Errorf("the debug line did not reach the next handler: %q", text.String())
	}
	if extra, err := recvWithin(stream, 200*time.Millisecond); err == nil {
		t.Errorf("unexpected message %q", extra.Message)
	}
}

// TestConvertRoundTrip: a record streamed and turned back is the record,
// for every field (filled by reflection, so a field added to the record
// and forgotten in the conversion fails here).
func TestConvertRoundTrip(t *testing.T) {
	// UserName is ours, not in KubeArmor's messages: not streamed.
	var a record.Alert
	fill(reflect.ValueOf(&a).Elem())
	a.UserName = ""
	if got := AlertRecord(alertMessage(a)); !reflect.DeepEqual(got, a) {
		t.Errorf("alert round trip:\n got %+v\nwant %+v", got, a)
	}
	var l record.Log
	fill(reflect.ValueOf(&l).Elem())
	l.UserName = ""
	if got := LogRecord(logMessage(l)); !reflect.DeepEqual(got, l) {
		t.Errorf("log round trip:\n got %+v\nwant %+v", got, l)
	}
}

// fill gives every field of struct v a distinct non-zero value.
func fill(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-value")
		case reflect.Int32, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"a", v.Type().Field(i).Name}))
		}
	}
}
