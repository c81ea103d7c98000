// Package client connects to the daemon's local API: the probe and summary
// calls, and alert and log streams that outlive a daemon restart.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kubearmor/kubearmor-host/daemon/api"
	"github.com/kubearmor/kubearmor-host/daemon/api/feeder"
	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// DefaultSocket is where the daemon serves its API unless configured
// otherwise (apiSocket).
const DefaultSocket = "/run/kubearmor/kubearmor.sock"

// ErrNoDaemon says that nothing listens on the socket.
var ErrNoDaemon = errors.New("the kubearmor daemon is not running")

// Client is a connection to one daemon.
type Client struct {
	socket string
	conn   *grpc.ClientConn
	logs   feeder.LogServiceClient
	host   hostpb.HostClient
}

// Dial connects to the daemon at socket. The connection is made lazily;
// a missing socket is reported at once, as ErrNoDaemon.
func Dial(socket string) (*Client, error) {
	if _, err := os.Stat(socket); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (no socket at %s)", ErrNoDaemon, socket)
		}
		return nil, fmt.Errorf("daemon socket %s: %w", socket, err)
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	return &Client{socket: socket, conn: conn, logs: feeder.NewLogServiceClient(conn), host: hostpb.NewHostClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// unavailable turns a refused connection into ErrNoDaemon.
func (c *Client) unavailable(what string, err error) error {
	if status.Code(err) == codes.Unavailable {
		return fmt.Errorf("%s: %w (%s does not answer: %v)", what, ErrNoDaemon, c.socket, status.Convert(err).Message())
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Probe asks the daemon what it runs with and what it counted.
func (c *Client) Probe(ctx context.Context) (*hostpb.ProbeReply, error) {
	r, err := c.host.Probe(ctx, &hostpb.ProbeRequest{})
	if err != nil {
		return nil, c.unavailable("probe", err)
	}
	return r, nil
}

// Summary asks for the summary tables of one kind (process, file,
// network; "" for all).
func (c *Client) Summary(ctx context.Context, kind string) (*hostpb.SummaryReply, error) {
	r, err := c.host.Summary(ctx, &hostpb.SummaryRequest{Type: kind})
	if err != nil {
		return nil, c.unavailable("summary", err)
	}
	return r, nil
}

// Streams says which streams Watch follows.
type Streams struct {
	Alerts, Logs bool
}

// Reconnect is called when a stream broke and Watch waits for the daemon
// to come back, and again (with nil) once it is back.
type Reconnect func(err error)

// Watch streams alerts and logs to fn, one at a time, until ctx ends or fn
// returns an error (io.EOF stops without error). When the daemon goes
// away, Watch waits for it and resumes; records made meanwhile are not
// seen.
func (c *Client) Watch(ctx context.Context, s Streams, fn func(record.Record) error, reconnect Reconnect) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the streams end with Watch
	defer cancel()
	recs := make(chan record.Record)
	errc := make(chan error, 2)
	follow := func(open func() (func() (record.Record, error), error)) {
		broken := false
		for ctx.Err() == nil {
			recv, err := open()
			if err == nil {
				if broken && reconnect != nil {
					reconnect(nil)
				}
				broken = false
				for {
					var r record.Record
					if r, err = recv(); err != nil {
						break
					}
					select {
					case recs <- r:
					case <-ctx.Done():
						return
					}
				}
			}
			if ctx.Err() != nil {
				return
			}
			if code := status.Code(err); code != codes.Unavailable && code != codes.Canceled && !errors.Is(err, io.EOF) {
				errc <- err
				return
			}
			if !broken && reconnect != nil {
				reconnect(err)
			}
			broken = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	// WaitForReady: a stream opened while the daemon restarts waits for
	// it instead of failing.
	if s.Alerts {
		wg.Go(func() {
			follow(opener(func() (grpc.ServerStreamingClient[feeder.Alert], error) {
				return c.logs.WatchAlerts(ctx, &feeder.RequestMessage{Filter: "policy"}, grpc.WaitForReady(true))
			}, func(a *feeder.Alert) record.Record { return api.AlertRecord(a) }))
		})
	}
	if s.Logs {
		wg.Go(func() {
			follow(opener(func() (grpc.ServerStreamingClient[feeder.Log], error) {
				return c.logs.WatchLogs(ctx, &feeder.RequestMessage{Filter: "system"}, grpc.WaitForReady(true))
			}, func(l *feeder.Log) record.Record { return api.LogRecord(l) }))
		})
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("watch: %w", err)
		case r := <-recs:
			if err := fn(r); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
}

// opener turns a stream's open call into one that yields records, for
// Watch's follow.
func opener[T any](open func() (grpc.ServerStreamingClient[T], error), conv func(*T) record.Record) func() (func() (record.Record, error), error) {
	return func() (func() (record.Record, error), error) {
		st, err := open()
		if err != nil {
			return nil, err
		}
		return func() (record.Record, error) {
			m, err := st.Recv()
			if err != nil {
				return nil, err
			}
			return conv(m), nil
		}, nil
	}
}
