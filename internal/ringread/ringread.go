// Package ringread reads the BPF ring buffers whose programs wake their
// reader only once a batch is queued (the alert, denial and telemetry
// rings): under a flood one wakeup drains thousands of records, and the
// reader polls so that a lone record does not wait for the batch.
package ringread

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// Each calls fn with every record of rd, waking at least every poll, until
// rd is closed (nil) or flushed (nil, once what was queued is read) or
// fails. fn must not keep the slice: the next record reuses it.
func Each(rd *ringbuf.Reader, poll time.Duration, fn func(raw []byte)) error {
	var rec ringbuf.Record
	rd.SetDeadline(time.Now().Add(poll))
	for {
		if err := rd.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				rd.SetDeadline(time.Now().Add(poll))
				continue
			case errors.Is(err, os.ErrClosed), errors.Is(err, ringbuf.ErrFlushed):
				return nil
			}
			return fmt.Errorf("read ring buffer: %w", err)
		}
		fn(rec.RawSample)
	}
}
