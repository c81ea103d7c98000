package record

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/kubearmor/kubearmor-host/daemon/journal"
)

// Record is an Alert or a Log.
type Record interface {
	Priority() int             // syslog priority
	Summary() string           // a readable one-liner
	Fields() map[string]string // KubeArmor field names to values
}

var (
	_ Record = Alert{}
	_ Record = Log{}
)

// Writer delivers records somewhere.
type Writer interface {
	Write(Record) error
}

// JournalWriter sends records to journald: MESSAGE is the one-line summary,
// PRIORITY comes from the severity, and every field is KUBEARMOR_<NAME>.
type JournalWriter struct {
	Sender journal.Sender
}

// FieldPrefix starts the journald name of every alert field.
const FieldPrefix = "KUBEARMOR"

func (w JournalWriter) Write(a Record) error {
	fields := make(map[string]string)
	for k, v := range a.Fields() {
		name, err := journal.FieldName(FieldPrefix, k)
		if err != nil {
			return fmt.Errorf("journald field for %s: %w", k, err)
		}
		fields[name] = v
	}
	return w.Sender.Send(a.Summary(), journal.Priority(a.Priority()), fields)
}

// JSONWriter writes one JSON object a line, with KubeArmor's field names.
type JSONWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONWriter writes to w.
func NewJSONWriter(w io.Writer) *JSONWriter { return &JSONWriter{enc: json.NewEncoder(w)} }

func (w *JSONWriter) Write(a Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enc.Encode(a)
}
