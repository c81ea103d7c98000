// Package api serves the daemon's local gRPC API on a unix socket: the
// KubeArmor log service (alerts, logs and the daemon's own messages,
// streamed in KubeArmor's wire format) and this daemon's Host service
// (probe and summary). Every stream has a bounded queue of its own: a
// client that does not keep up loses its own records, counted, and never
// slows the daemon or another client.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubearmor/kubearmor-host/daemon/api/feeder"
	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/fanout"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// DefaultQueue is the number of records a stream may have waiting.
const DefaultQueue = 4096

// State answers the Host service's calls.
type State interface {
	Probe() *hostpb.ProbeReply
	// Summary returns the tables of one kind (process, file, network; ""
	// for all), or an error for an unknown kind.
	Summary(kind string) (*hostpb.SummaryReply, error)
}

// Server is the local API. Publish records with Write and daemon messages
// through Handler; serve with Serve.
type Server struct {
	alerts   *fanout.Hub[record.Alert]
	logs     *fanout.Hub[record.Log]
	messages *fanout.Hub[*feeder.Message]
	queue    int
	log      *slog.Logger
	hostName string
}

// New returns a server whose streams have queues of queue records
// (DefaultQueue if 0), reporting to log (nil: nowhere, until SetLogger).
func New(hostName string, queue int, log *slog.Logger) *Server {
	if queue <= 0 {
		queue = DefaultQueue
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		alerts:   fanout.New[record.Alert](),
		logs:     fanout.New[record.Log](),
		messages: fanout.New[*feeder.Message](),
		queue:    queue,
		log:      log,
		hostName: hostName,
	}
}

// Write offers an alert or a log to the streams that watch it. It never
// blocks, and fails only for a record of another type.
func (s *Server) Write(r record.Record) error {
	switch r := r.(type) {
	case record.Alert:
		s.alerts.Publish(r)
	case record.Log:
		s.logs.Publish(r)
	default:
		return fmt.Errorf("api: no stream for records of type %T", r)
	}
	return nil
}

// Stats are the API's totals per stream kind.
type Stats struct {
	Alerts, Logs, Messages fanout.Stats
}

// Stats returns the API's totals.
func (s *Server) Stats() Stats {
	return Stats{Alerts: s.alerts.Stats(), Logs: s.logs.Stats(), Messages: s.messages.Stats()}
}

// SetLogger sets the logger for the server's own reports (a client that
// lost records). It is separate from New because the daemon's logger tees
// into this server's message stream.
func (s *Server) SetLogger(log *slog.Logger) { s.log = log }

// Serve serves on ln (from Listen) until ctx ends, and closes it, which
// removes the socket.
func (s *Server) Serve(ctx context.Context, ln net.Listener, state State) error {
	g := grpc.NewServer()
	feeder.RegisterLogServiceServer(g, &logService{s: s})
	hostpb.RegisterHostServer(g, &hostService{state: state})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		// Streams end when the daemon does; Stop does not wait for them.
		g.Stop()
	}()
	err := g.Serve(ln)
	<-done
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Listen opens the unix socket path, readable and writable by root alone;
// the directory is created 0700 if missing, a stale socket replaced.
// Separate from Serve so that the socket exists before the daemon says it
// is ready.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api socket directory %s: %w", dir, err)
	}
	// A socket left by a daemon that was killed; anything else there is
	// not ours to remove.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("api socket %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale api socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	// Connecting takes write permission on the socket, which the umask
	// (the service's is 022) already withholds from others; this makes it
	// exact whatever the umask.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	return ln, nil
}

type logService struct {
	feeder.UnimplementedLogServiceServer
	s *Server
}

func (l *logService) HealthCheck(_ context.Context, n *feeder.NonceMessage) (*feeder.ReplyMessage, error) {
	return &feeder.ReplyMessage{Retval: n.GetNonce()}, nil
}

// filterErr refuses a filter the method does not know, naming the ones it
// does.
func filterErr(method, filter string, valid ...string) error {
	return status.Errorf(codes.InvalidArgument, "%s: unknown filter %q (want one of %q, or empty for all)", method, filter, valid)
}

func (l *logService) WatchAlerts(req *feeder.RequestMessage, stream grpc.ServerStreamingServer[feeder.Alert]) error {
	if f := req.GetFilter(); f != "" && f != "all" && f != "policy" {
		return filterErr("WatchAlerts", f, "all", "policy")
	}
	return watch(l.s, "alerts", l.s.alerts, stream.Context(), func(a record.Alert) error { return stream.Send(alertMessage(a)) })
}

func (l *logService) WatchLogs(req *feeder.RequestMessage, stream grpc.ServerStreamingServer[feeder.Log]) error {
	if f := req.GetFilter(); f != "" && f != "all" && f != "system" {
		return filterErr("WatchLogs", f, "all", "system")
	}
	return watch(l.s, "logs", l.s.logs, stream.Context(), func(r record.Log) error { return stream.Send(logMessage(r)) })
}

func (l *logService) WatchMessages(req *feeder.RequestMessage, stream grpc.ServerStreamingServer[feeder.Message]) error {
	if f := req.GetFilter(); f != "" && f != "all" {
		return filterErr("WatchMessages", f, "all")
	}
	return watch(l.s, "messages", l.s.messages, stream.Context(), stream.Send)
}

// watch streams what hub publishes to one client until it leaves or the
// server stops, through a queue of the client's own.
func watch[T any](s *Server, what string, hub *fanout.Hub[T], ctx context.Context, send func(T) error) error {
	sub := hub.Subscribe(s.queue, nil)
	start := time.Now()
	defer func() {
		sub.Close()
		if n := sub.Dropped(); n > 0 {
			s.log.Warn("api client lost records: it did not keep up", "stream", what, "lost", n,
				"delivered", sub.Delivered()-uint64(len(sub.C())), "for", time.Since(start).Round(time.Second))
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case v, ok := <-sub.C():
			if !ok {
				return nil
			}
			if err := send(v); err != nil {
				return err
			}
		}
	}
}

type hostService struct {
	hostpb.UnimplementedHostServer
	state State
}

func (h *hostService) Probe(context.Context, *hostpb.ProbeRequest) (*hostpb.ProbeReply, error) {
	return h.state.Probe(), nil
}

func (h *hostService) Summary(_ context.Context, req *hostpb.SummaryRequest) (*hostpb.SummaryReply, error) {
	r, err := h.state.Summary(req.GetType())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return r, nil
}
