package journal

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

type sent struct {
	message  string
	priority Priority
	fields   map[string]string
}

type recorder struct{ entries []sent }

func (r *recorder) Send(m string, p Priority, f map[string]string) error {
	r.entries = append(r.entries, sent{m, p, f})
	return nil
}

type secret string

func (secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

func TestHandler(t *testing.T) {
	when := time.Date(2025, 6, 1, 12, 0, 0, 5, time.UTC)
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want []sent
	}{
		{
			name: "attributes become upper-case fields",
			log: func(l *slog.Logger) {
				l.Info("policy loaded", "policy_file", "/etc/kubearmor/policies/a.yaml", "rules", 3, "ok", true)
			},
			want: []sent{{"policy loaded", PriInfo, map[string]string{
				"POLICY_FILE": "/etc/kubearmor/policies/a.yaml", "RULES": "3", "OK": "true"}}},
		},
		{
			name: "levels map to priorities",
			log: func(l *slog.Logger) {
				l.Debug("d")
				l.Warn("w")
				l.Error("e")
				l.Log(context.Background(), slog.LevelError+4, "c")
			},
			want: []sent{
				{"d", PriDebug, map[string]string{}}, {"w", PriWarning, map[string]string{}},
				{"e", PriErr, map[string]string{}}, {"c", PriCrit, map[string]string{}},
			},
		},
		{
			name: "groups join with underscore",
			log: func(l *slog.Logger) {
				l.With("component", "loader").WithGroup("reload").With("reason", "sighup").
					Info("done", slog.Group("stats", "files", 2, slog.Group("rejected", "count", 1)), "took", 1500*time.Millisecond)
			},
			want: []sent{{"done", PriInfo, map[string]string{
				"COMPONENT": "loader", "RELOAD_REASON": "sighup", "RELOAD_STATS_FILES": "2",
				"RELOAD_STATS_REJECTED_COUNT": "1", "RELOAD_TOOK": "1.5s"}}},
		},
		{
			name: "a group with no attributes adds nothing",
			log:  func(l *slog.Logger) { l.WithGroup("empty").Info("m") },
			want: []sent{{"m", PriInfo, map[string]string{}}},
		},
		{
			name: "values: error, time, LogValuer, inline group, empty attr",
			log: func(l *slog.Logger) {
				l.Info("m", "error", errors.New("open x: permission denied"), "at", when, "token", secret("s3cr3t"),
					slog.Group("", "inlined", "yes"), slog.Attr{})
			},
			want: []sent{{"m", PriInfo, map[string]string{
				"ERROR": "open x: permission denied", "AT": "2025-06-01T12:00:00.000000005Z",
				"TOKEN": "REDACTED", "INLINED": "yes"}}},
		},
		{
			name: "keys journald would drop are made valid",
			log: func(l *slog.Logger) {
				l.Info("m", "policy-name", "a", "2fa", "b", "_pid", "c", "message", "d", "priority", "e",
					"syslog.identifier", "karmor", strings.Repeat("k", 70), "f", "", "g", "ümlaut", "h")
			},
			want: []sent{{"m", PriInfo, map[string]string{
				"POLICY_NAME": "a", "ATTR_2FA": "b", "PID": "c", "ATTR_MESSAGE": "d", "ATTR_PRIORITY": "e",
				"SYSLOG_IDENTIFIER": "karmor", strings.Repeat("K", 64): "f", "MLAUT": "h"}}},
		},
		{
			name: "a repeated key keeps its last value",
			log:  func(l *slog.Logger) { l.With("k", 1).Info("m", "k", 2) },
			want: []sent{{"m", PriInfo, map[string]string{"K": "2"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			tt.log(slog.New(NewHandler(&r, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if !reflect.DeepEqual(r.entries, tt.want) {
				t.Errorf("got  %+v\nwant %+v", r.entries, tt.want)
			}
			for _, e := range r.entries {
				for name := range e.fields {
					if err := ValidFieldName(name); err != nil {
						t.Errorf("handler produced invalid name: %v", err)
					}
				}
			}
		})
	}
}

func TestHandlerLevelAndSource(t *testing.T) {
	var r recorder
	l := slog.New(NewHandler(&r, &slog.HandlerOptions{AddSource: true}))
	l.Debug("hidden")
	l.Info("shown")
	if len(r.entries) != 1 {
		t.Fatalf("got %d entries, want 1 (debug filtered at the default info level)", len(r.entries))
	}
	f := r.entries[0].fields
	if !strings.HasSuffix(f["CODE_FILE"], "handler_test.go") || f["CODE_LINE"] == "" || !strings.HasSuffix(f["CODE_FUNC"], "TestHandlerLevelAndSource") {
		t.Errorf("source fields: %v", f)
	}
}

func TestLevelPriority(t *testing.T) {
	tests := map[slog.Level]Priority{
		slog.LevelDebug - 4: PriDebug, slog.LevelDebug: PriDebug, slog.LevelInfo: PriInfo, slog.LevelInfo + 2: PriInfo,
		slog.LevelWarn: PriWarning, slog.LevelError: PriErr, slog.LevelError + 3: PriErr, slog.LevelError + 4: PriCrit,
	}
	for l, want := range tests {
		if got := LevelPriority(l); got != want {
			t.Errorf("LevelPriority(%v) = %d, want %d", l, got, want)
		}
	}
}
