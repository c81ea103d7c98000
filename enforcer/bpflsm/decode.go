package bpflsm

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

var alertHeaderSize = int(unsafe.Sizeof(lsmAlert{}))

// decodeAlert turns one ring-buffer record into an event. boot converts the
// kernel's boot-time nanoseconds to wall-clock time.
func decodeAlert(raw []byte, boot func(ns uint64) time.Time) (enforcer.Event, error) {
	var h lsmAlert
	if len(raw) < alertHeaderSize {
		return enforcer.Event{}, fmt.Errorf("alert record of %d bytes is shorter than its %d-byte header", len(raw), alertHeaderSize)
	}
	// Copied as it lies: the kernel wrote it in this machine's byte order
	// and the C layout bpf2go's struct mirrors (as the monitor's decode).
	h = *(*lsmAlert)(unsafe.Pointer(unsafe.SliceData(raw)))
	data := raw[alertHeaderSize:]
	if int(h.PathLen)+int(h.ExeLen) > len(data) {
		return enforcer.Event{}, fmt.Errorf("alert record claims %d+%d path bytes, has %d", h.PathLen, h.ExeLen, len(data))
	}
	if h.Verdict < uint8(match.Audit) || h.Verdict > uint8(match.PostureBlock) {
		return enforcer.Event{}, fmt.Errorf("alert record with verdict %d", h.Verdict)
	}
	return enforcer.Event{
		Time:          boot(h.Ts),
		Version:       h.Gen >> 1,
		RuleID:        h.Rule,
		Verdict:       match.Verdict(h.Verdict),
		Op:            match.Op(h.Op),
		PID:           h.Tgid,
		TID:           h.Pid,
		PPID:          h.Ppid,
		UID:           h.Uid,
		OwnerUID:      h.OwnerUid,
		Comm:          unix.ByteSliceToString(h.Comm[:]),
		Path:          string(data[:h.PathLen]),
		Exe:           string(data[h.PathLen : int(h.PathLen)+int(h.ExeLen)]),
		Truncated:     h.Flags&uint8(lsmKaEventFlagKA_EV_PATH_TRUNCATED|lsmKaEventFlagKA_EV_SCRATCH_BUSY|lsmKaEventFlagKA_EV_TORN) != 0,
		ExeTruncated:  h.Flags&uint8(lsmKaEventFlagKA_EV_EXE_TRUNCATED) != 0,
		NoHostPath:    h.Flags&uint8(lsmKaEventFlagKA_EV_DETACHED|lsmKaEventFlagKA_EV_NO_HOST) != 0,
		ExeNoHostPath: h.ExeFlags&uint8(lsmKaEventFlagKA_EV_DETACHED|lsmKaEventFlagKA_EV_NO_HOST) != 0,
		Loaded:        h.Flags&uint8(lsmKaEventFlagKA_EV_LOADED) != 0,
		Res0:          h.Res0,
		Res1:          h.Res1,
	}, nil
}
