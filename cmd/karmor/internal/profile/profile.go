// Package profile is karmor profile's live terminal table: the daemon's
// records aggregated by operation, program and resource, one tab per
// operation, with counts, the last result and when it was last seen.
package profile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// Tabs, in order. Syscall is shown only once such records came.
var tabs = []string{"Process", "File", "Network", "Syscall"}

// maxRows bounds the rows per tab; records for new rows beyond it are
// counted, not shown, so a flood of distinct files cannot exhaust memory.
const maxRows = 20000

// Row is one aggregated line of a tab.
type Row struct {
	Process  string    `json:"process"`
	Resource string    `json:"resource"`
	Count    uint64    `json:"count"`
	Result   string    `json:"result"` // the last one
	LastSeen time.Time `json:"lastSeen"`
}

type rowKey struct{ process, resource string }

// shiftStep is how far left/right scroll the Resource column.
const shiftStep = 8

// Sort columns, cycled by s.
var sortNames = []string{"count", "process", "resource", "result", "last seen"}

// Records is a batch of records, as the program sends them to the model.
type Records []record.Record

// Lost says the stream broke (Err) or came back (nil).
type Lost struct{ Err error }

// Model is the Bubble Tea model.
type Model struct {
	rows     map[string]map[rowKey]*Row
	dropped  uint64 // records for rows beyond maxRows
	tab      int
	cursor   int
	offset   int
	sortBy   int
	shift    int // runes of each Resource hidden on the left (horizontal scroll)
	filter   string
	editing  bool // typing a filter
	width    int
	height   int
	status   string
	exportTo string // directory for e
	now      func() time.Time
}

// New returns an empty model that exports into dir.
func New(dir string) Model {
	return Model{rows: map[string]map[rowKey]*Row{}, width: 120, height: 30, exportTo: dir, now: time.Now}
}

// Init implements tea.Model.
func (m Model) Init() tea.Cmd { return nil }

// Add counts records; it is what the Records message does.
func (m *Model) Add(recs []record.Record) {
	for _, r := range recs {
		var op, src, res, result, updated string
		switch r := r.(type) {
		case record.Log:
			op, src, res, result, updated = r.Operation, r.Source, r.Resource, r.Result, r.UpdatedTime
		case record.Alert:
			op, src, res, result, updated = r.Operation, r.Source, r.Resource, r.Result, r.UpdatedTime
		default:
			continue
		}
		if !slices.Contains(tabs, op) {
			continue
		}
		t := m.rows[op]
		if t == nil {
			t = map[rowKey]*Row{}
			m.rows[op] = t
		}
		k := rowKey{src, res}
		row := t[k]
		if row == nil {
			if len(t) >= maxRows {
				m.dropped++
				continue
			}
			row = &Row{Process: src, Resource: res}
			t[k] = row
		}
		row.Count++
		row.Result = result
		if when, err := time.Parse(record.TimeLayout, updated); err == nil {
			row.LastSeen = when
		}
	}
}

// visibleTabs are the tabs shown: Syscall only once it has rows.
func (m Model) visibleTabs() []string {
	if len(m.rows["Syscall"]) == 0 {
		return tabs[:3]
	}
	return tabs
}

// Rows returns the current tab's rows, filtered and sorted as shown.
func (m Model) Rows() []Row {
	var out []Row
	f := strings.ToLower(m.filter)
	for _, r := range m.rows[m.visibleTabs()[m.tab]] {
		if f != "" && !strings.Contains(strings.ToLower(r.Process+" "+r.Resource+" "+r.Result), f) {
			continue
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Row) int {
		var c int
		switch m.sortBy {
		case 0:
			c = cmp.Compare(b.Count, a.Count)
		case 1:
			c = cmp.Compare(a.Process, b.Process)
		case 2:
			c = cmp.Compare(a.Resource, b.Resource)
		case 3:
			c = cmp.Compare(a.Result, b.Result)
		case 4:
			c = b.LastSeen.Compare(a.LastSeen)
		}
		// Ties in a stable order, so the table does not shuffle.
		return cmp.Or(c, cmp.Compare(a.Process, b.Process), cmp.Compare(a.Resource, b.Resource))
	})
	return out
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case Records:
		m.Add(msg)
	case Lost:
		if msg.Err != nil {
			m.status = "lost the daemon (" + msg.Err.Error() + "); waiting for it"
		} else {
			m.status = "the daemon is back"
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyMsg:
		if m.editing {
			return m.editFilter(msg), nil
		}
		return m.key(msg)
	}
	m.clamp()
	return m, nil
}

func (m Model) editFilter(k tea.KeyMsg) Model {
	switch k.Type {
	case tea.KeyEnter:
		m.editing = false
	case tea.KeyEsc:
		m.editing, m.filter = false, ""
	case tea.KeyBackspace:
		if r := []rune(m.filter); len(r) > 0 {
			m.filter = string(r[:len(r)-1])
		}
	case tea.KeyRunes, tea.KeySpace:
		m.filter += string(k.Runes)
	}
	m.cursor, m.offset = 0, 0
	return m
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	n := len(m.visibleTabs())
	switch k.String() {
	case "q", "ctrl+c":
		return m, tea.Quit
	case "tab":
		m.tab, m.cursor, m.offset, m.shift = (m.tab+1)%n, 0, 0, 0
	case "shift+tab":
		m.tab, m.cursor, m.offset, m.shift = (m.tab+n-1)%n, 0, 0, 0
	case "right", "l":
		m.shift += shiftStep
	case "left", "h":
		m.shift = max(m.shift-shiftStep, 0)
	case "down", "j":
		m.cursor++
	case "up", "k":
		m.cursor--
	case "pgdown":
		m.cursor += m.pageRows()
	case "pgup":
		m.cursor -= m.pageRows()
	case "/":
		m.editing = true
	case "esc":
		m.filter = ""
	case "s":
		m.sortBy = (m.sortBy + 1) % len(sortNames)
	case "e":
		if path, err := m.export(); err != nil {
			m.status = "export failed: " + err.Error()
		} else {
			m.status = "exported to " + path
		}
	}
	m.clamp()
	return m, nil
}

// export writes the current tab's rows, as shown, as JSON.
func (m Model) export() (string, error) {
	name := fmt.Sprintf("karmor-profile-%s-%s.json", strings.ToLower(m.visibleTabs()[m.tab]), m.now().UTC().Format("20060102-150405"))
	path := filepath.Join(m.exportTo, name)
	b, err := json.MarshalIndent(m.Rows(), "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o600)
}

// pageRows is the rows that fit: the terminal less the tab line, the
// header, the status line and the help line.
func (m Model) pageRows() int { return max(m.height-4, 1) }

// clamp keeps the cursor on a row and in the window.
func (m *Model) clamp() {
	if m.tab >= len(m.visibleTabs()) {
		m.tab = 0
	}
	n := len(m.Rows())
	m.cursor = max(min(m.cursor, n-1), 0)
	page := m.pageRows()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+page {
		m.offset = m.cursor - page + 1
	}
}

// View implements tea.Model.
func (m Model) View() string {
	var b strings.Builder
	for i, t := range m.visibleTabs() {
		label := fmt.Sprintf(" %s (%d) ", t, len(m.rows[t]))
		if i == m.tab {
			label = "[" + strings.TrimSpace(label) + "]"
		}
		b.WriteString(label + " ")
	}
	b.WriteString("\n")
	rows := m.Rows()
	resW := max(m.width-68, 20)
	fmt.Fprintf(&b, "  %-28s %-*s %8s  %-18s %s\n", "PROCESS", resW, "RESOURCE", "COUNT", "RESULT", "LAST SEEN")
	end := min(m.offset+m.pageRows(), len(rows))
	for i := m.offset; i < end; i++ {
		r := rows[i]
		mark := "  "
		if i == m.cursor {
			mark = "> "
		}
		seen := "-"
		if !r.LastSeen.IsZero() {
			seen = r.LastSeen.Local().Format(time.TimeOnly)
		}
		res := r.Resource
		if m.shift > 0 {
			rs := []rune(res)
			res = "…" + string(rs[min(m.shift, len(rs)):])
		}
		fmt.Fprintf(&b, "%s%-28s %-*s %8d  %-18s %s\n", mark, cut(r.Process, 28), resW, cut(res, resW), r.Count,
			cut(r.Result, 18), seen)
	}
	for i := end - m.offset; i < m.pageRows(); i++ {
		b.WriteString("\n")
	}
	filter := m.filter
	if m.editing {
		filter += "_"
	}
	fmt.Fprintf(&b, "%d of %d rows, sorted by %s", len(rows), len(m.rows[m.visibleTabs()[m.tab]]), sortNames[m.sortBy])
	if filter != "" {
		fmt.Fprintf(&b, ", filter: %s", filter)
	}
	if m.dropped > 0 {
		fmt.Fprintf(&b, ", %d records for rows beyond %d not shown", m.dropped, maxRows)
	}
	if m.status != "" {
		b.WriteString(" | " + m.status)
	}
	b.WriteString("\ntab: next tab  j/k/↑/↓: scroll  h/l/←/→: scroll resources  /: filter  esc: clear  s: sort  e: export  q: quit\n")
	return b.String()
}

// cut shortens s to n runes, keeping its end (the informative part of a
// path).
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}
