package profile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kubearmor/kubearmor-host/daemon/record"
)

func logOf(op, src, res, result string, sec int) record.Log {
	return record.Log{Type: record.TypeHostLog, Operation: op, Source: src, Resource: res, Result: result,
		UpdatedTime: time.Date(2026, 11, 26, 10, 0, sec, 0, time.UTC).Format(record.TimeLayout)}
}

func press(t *testing.T, m Model, keys ...string) Model {
	t.Helper()
	for _, k := range keys {
		var msg tea.KeyMsg
		switch k {
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "right":
			msg = tea.KeyMsg{Type: tea.KeyRight}
		case "shift+tab":
			msg = tea.KeyMsg{Type: tea.KeyShiftTab}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

// screen returns the table's lines, header first, without the blank
// lines that fill the page.
func screen(m Model) []string {
	var rows []string
	for _, l := range strings.Split(m.View(), "\n")[1:] {
		if strings.Contains(l, " rows, sorted by ") {
			break
		}
		if l = strings.TrimSpace(l); l != "" {
			rows = append(rows, l)
		}
	}
	return rows
}

func TestProfile(t *testing.T) {
	dir := t.TempDir()
	m := New(dir)
	m.now = func() time.Time { return time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC) }
	next, _ := m.Update(Records{
		logOf("Process", "/usr/bin/bash", "/usr/bin/ls", "Passed", 1),
		logOf("Process", "/usr/bin/bash", "/usr/bin/ls", "Passed", 2),
		logOf("Process", "/usr/bin/bash", "/usr/bin/cat", "Passed", 3),
		logOf("File", "/usr/bin/cat", "/etc/shadow", "Permission denied", 4),
		logOf("File", "/usr/bin/cat", "/etc/hosts", "Passed", 5),
		logOf("File", "/usr/bin/cat", "/etc/hosts", "Passed", 6),
		logOf("Network", "/usr/bin/curl", "remoteip=1.1.1.1 port=443 protocol=TCP", "Passed", 7),
		record.Alert{Operation: "File", Source: "/usr/bin/vi", Resource: "/etc/passwd", Result: "Permission denied"},
	})
	m = next.(Model)

	head := strings.SplitN(m.View(), "\n", 2)[0]
	if head != "[Process (2)]  File (3)   Network (1)  " {
		t.Errorf("tabs %q", head)
	}
	rows := screen(m)
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "PROCESS") || !strings.HasPrefix(rows[1], "> /usr/bin/bash") ||
		!strings.Contains(rows[1], "/usr/bin/ls") || !strings.Contains(rows[1], " 2 ") || !strings.Contains(rows[2], "/usr/bin/cat") {
		t.Errorf("Process tab:\n%s", strings.Join(rows, "\n"))
	}

	m = press(t, m, "tab")
	rows = screen(m)
	if len(rows) != 4 || !strings.Contains(rows[1], "/etc/hosts") || !strings.Contains(rows[1], " 2 ") {
		t.Errorf("File tab, by count:\n%s", strings.Join(rows, "\n"))
	}

	m = press(t, m, "/", "s", "h", "a", "d", "enter")
	rows = screen(m)
	if len(rows) != 2 || !strings.Contains(rows[1], "/etc/shadow") || !strings.Contains(m.View(), "1 of 3 rows") ||
		!strings.Contains(m.View(), "filter: shad") {
		t.Errorf("filtered:\n%s", m.View())
	}
	m = press(t, m, "esc")
	if rows = screen(m); len(rows) != 4 {
		t.Errorf("after esc:\n%s", m.View())
	}

	m = press(t, m, "s", "s") // count -> process -> resource
	if rows = screen(m); !strings.Contains(m.View(), "sorted by resource") || !strings.Contains(rows[1], "/etc/hosts") ||
		!strings.Contains(rows[2], "/etc/passwd") || !strings.Contains(rows[3], "/etc/shadow") {
		t.Errorf("sorted by resource:\n%s", m.View())
	}

	m = press(t, m, "down", "e")
	path := filepath.Join(dir, "karmor-profile-file-20261126-100100.json")
	if !strings.Contains(m.View(), "exported to "+path) || !strings.Contains(screen(m)[2], "> ") {
		t.Errorf("after down, e:\n%s", m.View())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []Row
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m.Rows()) || len(got) != 3 {
		t.Errorf("exported %+v, shown %+v", got, m.Rows())
	}

	// Network: right scrolls the resource, h back.
	m = press(t, m, "tab", "right")
	if rows = screen(m); !strings.Contains(rows[1], "…=1.1.1.1 port=443") {
		t.Errorf("scrolled right:\n%s", m.View())
	}
	m = press(t, m, "h")
	if rows = screen(m); !strings.Contains(rows[1], "remoteip=1.1.1.1") {
		t.Errorf("scrolled back:\n%s", m.View())
	}
	m = press(t, m, "tab") // wraps to Process
	if !strings.HasPrefix(m.View(), "[Process") {
		t.Errorf("tab wraps: %q", strings.SplitN(m.View(), "\n", 2)[0])
	}
	if m = press(t, m, "shift+tab"); !strings.Contains(strings.SplitN(m.View(), "\n", 2)[0], "[Network") {
		t.Errorf("shift+tab goes back: %q", strings.SplitN(m.View(), "\n", 2)[0])
	}
	m = press(t, m, "tab")
	next, _ = m.Update(Records{logOf("Syscall", "/usr/bin/x", "SYS_SETUID", "Passed", 8)})
	m = next.(Model)
	if !strings.Contains(strings.SplitN(m.View(), "\n", 2)[0], "Syscall (1)") {
		t.Errorf("no Syscall tab after a syscall record: %q", strings.SplitN(m.View(), "\n", 2)[0])
	}

	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if cmd == nil || !reflect.DeepEqual(cmd(), tea.Quit()) {
		t.Error("q does not quit")
	}
}

// TestFlood: a flood of distinct files stays bounded, is counted, and the
// screen still shows one page.
func TestFlood(t *testing.T) {
	m := New(t.TempDir())
	next, _ := m.Update(tea.WindowSizeMsg{Width: 100, Height: 20})
	m = next.(Model)
	batch := make(Records, 0, 1000)
	for i := range maxRows + 5000 {
		batch = append(batch, logOf("File", "/usr/bin/find", fmt.Sprintf("/data/f%d", i), "Passed", i%60))
		if len(batch) == cap(batch) {
			next, _ = m.Update(batch)
			m = next.(Model)
			batch = batch[:0]
		}
	}
	m = press(t, m, "tab")
	if n := len(m.rows["File"]); n != maxRows {
		t.Errorf("%d rows, want the bound %d", n, maxRows)
	}
	if m.dropped != 5000 {
		t.Errorf("dropped %d, want 5000", m.dropped)
	}
	if lines := strings.Count(m.View(), "\n"); lines != 20 {
		t.Errorf("view has %d lines for a 20-line terminal", lines)
	}
	if !strings.Contains(m.View(), "5000 records for rows beyond 20000 not shown") {
		t.Errorf("status line does not say what was not shown:\n%s", m.View())
	}
}
