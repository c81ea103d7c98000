package observe

// procTable remembers the executable of each live process, so that an exec
// can be attributed to the program that called execve (the fromSource
// subject): by the time the exec tracepoint fires the process already runs
// the new program. It is bounded; when full, new processes are not tracked
// and are counted.
type procTable struct {
	max     int
	exe     map[uint32]string
	dropped uint64
}

func newProcTable(max int) *procTable {
	return &procTable{max: max, exe: make(map[uint32]string)}
}

func (t *procTable) set(pid uint32, exe string) {
	if _, ok := t.exe[pid]; !ok && len(t.exe) >= t.max {
		t.dropped++
		return
	}
	t.exe[pid] = exe
}

// fork records a new process running its parent's program.
func (t *procTable) fork(parent, child uint32) {
	if exe, ok := t.exe[parent]; ok {
		t.set(child, exe)
	}
}

// exec records that pid now runs path and returns what it ran before.
func (t *procTable) exec(pid uint32, path string) (before string, known bool) {
	before, known = t.exe[pid]
	t.set(pid, path)
	return before, known
}

func (t *procTable) exit(pid uint32) { delete(t.exe, pid) }

func (t *procTable) len() int { return len(t.exe) }
