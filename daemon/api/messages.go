package api

import (
	"context"
	"log/slog"
	"strings"

	"github.com/kubearmor/kubearmor-host/daemon/api/feeder"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// Messages returns a handler that passes every record to next and also
// streams those at level Info and above to WatchMessages clients: the
// daemon's own log, as KubeArmor's messages.
func (s *Server) Messages(next slog.Handler) slog.Handler {
	return &messageHandler{next: next, s: s}
}

type messageHandler struct {
	next  slog.Handler
	s     *Server
	attrs string // " key=value" from WithAttrs, rendered under the group of the time
	group string // from WithGroup, dotted
}

func (h *messageHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *messageHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		h.s.messages.Publish(h.message(r))
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// message renders r as "msg key=value ...", with the handler's own
// attributes first.
func (h *messageHandler) message(r slog.Record) *feeder.Message {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	return &feeder.Message{
		Timestamp:   r.Time.Unix(),
		UpdatedTime: record.UpdatedTime(r.Time),
		HostName:    h.s.hostName,
		Type:        "Message",
		Level:       r.Level.String(),
		Message:     b.String(),
	}
}

// writeAttr writes " group.key=value", groups flattened as slog's text
// handler does.
func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			writeAttr(b, strings.TrimPrefix(group+"."+a.Key, "."), g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	b.WriteByte(' ')
	if group != "" {
		b.WriteString(group + ".")
	}
	b.WriteString(a.Key + "=" + v.String())
}

func (h *messageHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	c.attrs = b.String()
	return &c
}

func (h *messageHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = strings.TrimPrefix(h.group+"."+name, ".")
	return &c
}
