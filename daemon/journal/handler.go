package journal

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// Sender is where a Handler writes entries; *Client is one.
type Sender interface {
	Send(message string, priority Priority, fields map[string]string) error
}

// Handler is a slog.Handler writing each record as one journal entry: the
// message as MESSAGE, the level as PRIORITY, and every attribute as its own
// field, upper-cased, with groups joined by _ (slog key "policy_file" ->
// POLICY_FILE, group "reload" key "count" -> RELOAD_COUNT). With AddSource,
// the caller goes to the journal's own CODE_FILE, CODE_LINE and CODE_FUNC.
type Handler struct {
	sender    Sender
	level     slog.Leveler
	addSource bool
	prefix    string  // open groups, as "GROUP_"
	fields    []field // from WithAttrs, already named
}

type field struct{ name, value string }

// NewHandler returns a handler writing to s. Of opts, Level and AddSource are
// honoured; ReplaceAttr is not.
func NewHandler(s Sender, opts *slog.HandlerOptions) *Handler {
	h := &Handler{sender: s, level: slog.LevelInfo}
	if opts != nil {
		if opts.Level != nil {
			h.level = opts.Level
		}
		h.addSource = opts.AddSource
	}
	return h
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle implements slog.Handler. A repeated key keeps its last value, since
// a journal field with two values confuses most readers.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	fields := make(map[string]string, len(h.fields)+r.NumAttrs()+3)
	for _, f := range h.fields {
		fields[f.name] = f.value
	}
	r.Attrs(func(a slog.Attr) bool {
		for _, f := range appendAttr(nil, h.prefix, a) {
			fields[f.name] = f.value
		}
		return true
	})
	if h.addSource {
		if src := r.Source(); src != nil {
			fields["CODE_FILE"] = src.File
			fields["CODE_LINE"] = strconv.Itoa(src.Line)
			fields["CODE_FUNC"] = src.Function
		}
	}
	return h.sender.Send(r.Message, LevelPriority(r.Level), fields)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.fields = append([]field(nil), h.fields...)
	for _, a := range attrs {
		h2.fields = appendAttr(h2.fields, h.prefix, a)
	}
	return &h2
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + sanitize(name) + "_"
	return &h2
}

// appendAttr flattens an attribute into named fields.
func appendAttr(fs []field, prefix string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fs // slog: ignore empty attributes
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" { // an empty group key inlines its attributes
			p += sanitize(a.Key) + "_"
		}
		for _, ga := range a.Value.Group() {
			fs = appendAttr(fs, p, ga)
		}
		return fs
	}
	name := attrFieldName(prefix, a.Key)
	if name == "" {
		return fs
	}
	return append(fs, field{name, attrValue(a.Value)})
}

// attrFieldName makes a slog key a valid journal field name, so no attribute
// is silently dropped by journald. Names that would start with a digit get
// an ATTR_ prefix, as do MESSAGE and PRIORITY, which belong to the record.
func attrFieldName(prefix, key string) string {
	name := sanitize(prefix + sanitize(key))
	if name == "" {
		return ""
	}
	if name[0] >= '0' && name[0] <= '9' || name == "MESSAGE" || name == "PRIORITY" {
		name = "ATTR_" + name
	}
	if len(name) > maxFieldName {
		name = name[:maxFieldName]
	}
	return name
}

func attrValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano) // Value.String would add the monotonic reading
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.String()
}

// LevelPriority maps a slog level to a syslog priority: debug 7, info 6,
// warn 4, error 3, and levels above error to crit (2).
func LevelPriority(l slog.Level) Priority {
	switch {
	case l < slog.LevelInfo:
		return PriDebug
	case l < slog.LevelWarn:
		return PriInfo
	case l < slog.LevelError:
		return PriWarning
	case l < slog.LevelError+4:
		return PriErr
	default:
		return PriCrit
	}
}
