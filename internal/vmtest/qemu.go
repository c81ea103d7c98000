package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// QEMUBinary is the emulator the guests run in.
const QEMUBinary = "qemu-system-x86_64"

// DefaultCmdline is the guest kernel command line. The lsm= list puts bpf
// and apparmor in the active LSMs whatever the kernel's default; panic=-1
// with QEMU's -no-reboot turns a panic (or an oops, with oops=panic) into
// an immediate exit instead of a hang until the timeout. loglevel=5 keeps
// the console short but shows warnings, errors and their stack traces.
const DefaultCmdline = "console=ttyS0 lsm=lockdown,capability,landlock,yama,apparmor,tomoyo,bpf " +
	"panic=-1 oops=panic loglevel=5"

// Machine defaults.
const (
	DefaultCPUs      = 2
	DefaultMemoryMiB = 2048
	DefaultTimeout   = 16 * time.Minute
)

// Machine is one boot of a kernel with an initramfs.
type Machine struct {
	Kernel    Kernel
	Initramfs *Initramfs
	CPUs      int           // DefaultCPUs if 0
	MemoryMiB int           // DefaultMemoryMiB if 0
	Timeout   time.Duration // DefaultTimeout if 0; the boot is killed after it
	Cmdline   string        // appended to DefaultCmdline
	// WorkDir holds the console log; a temporary directory if empty.
	WorkDir string
	// CountInstructions runs the guest on a virtual clock that advances
	// one nanosecond per instruction executed (QEMU -icount shift=0), so
	// that time measured in the guest is its instruction count, whatever
	// else the host is doing: what benchmarks compare. Slower; not for tests
	// that wait on host time.
	CountInstructions bool
}

// Output is what one guest command printed and how it ended.
type Output struct {
	Command  Command
	Output   []byte
	ExitCode int
	Finished bool          // false if the guest stopped while it ran, or never ran it
	Duration time.Duration // as seen by the host
}

// Result is what a boot produced. Run returns it even with an error, so the
// caller can show the console and the outputs that made it.
type Result struct {
	Kernel   Kernel
	Uname    string   // uname -r in the guest
	LSM      string   // /sys/kernel/security/lsm in the guest
	Outputs  []Output // one per Guest.Commands entry, in order
	Console  []byte   // the whole kernel console (ttyS0), without CRs and terminal escapes
	Boot     time.Duration
	Duration time.Duration
}

// LSMs returns the active LSM list as a slice.
func (r *Result) LSMs() []string {
	if r.LSM == "" {
		return nil
	}
	return strings.Split(r.LSM, ",")
}

// ConsoleTail returns the last n lines of the console.
func (r *Result) ConsoleTail(n int) string {
	return tail(r.Console, n)
}

// consoleExcerpt is the part of the console worth putting in an error: from
// shortly before a panic to the end (a panic's stack trace can be longer
// than any fixed tail), else the last lines.
func (r *Result) consoleExcerpt() string {
	const maxLines = 150
	i := bytes.LastIndex(r.Console, []byte("Kernel panic"))
	if i < 0 {
		return r.ConsoleTail(60)
	}
	// Start a few lines earlier: the cause (BUG:, Oops:) comes first.
	start := i
	for n := 0; n < 8 && start > 0; n++ {
		start = bytes.LastIndexByte(r.Console[:start-1], '\n') + 1
	}
	return tail(r.Console[start:], maxLines)
}

// terminalEscapes matches the control sequences SeaBIOS and the kernel
// write to the console; in a test log they would reset the terminal.
var terminalEscapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[@-Z\\-_]|c)`)

func cleanConsole(b []byte) []byte {
	b = terminalEscapes.ReplaceAll(b, nil)
	return bytes.ReplaceAll(b, []byte("\r"), nil)
}

// Run boots the machine and waits for the guest to run its commands and
// power off. It fails if the kernel panics, the guest stops before it is
// done, or the timeout passes; the error then ends with the console's tail.
func (m Machine) Run(ctx context.Context) (*Result, error) {
	if m.Initramfs == nil || len(m.Initramfs.Commands) < 2 || m.Initramfs.nonce == "" {
		return nil, errors.New("run guest: no initramfs from BuildInitramfs")
	}
	res := &Result{Kernel: m.Kernel}
	workDir := m.WorkDir
	if workDir == "" {
		dir, err := os.MkdirTemp("", "vmtest-")
		if err != nil {
			return res, fmt.Errorf("run guest: %w", err)
		}
		defer os.RemoveAll(dir)
		workDir = dir
	}
	timeout := orDefault(m.Timeout, DefaultTimeout)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// A file per run: runs may share a work directory.
	consoleFile, err := os.CreateTemp(workDir, "console-"+m.Kernel.Release+"-*.log")
	if err != nil {
		return res, fmt.Errorf("run guest: %w", err)
	}
	consoleFile.Close()
	consolePath := consoleFile.Name()
	cmd := exec.CommandContext(ctx, QEMUBinary, m.qemuArgs(consolePath)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, fmt.Errorf("run guest: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", QEMUBinary, err)
	}
	parser := newResultParser(m.Initramfs, start)
	readErr := parser.read(stdout)
	if parser.current >= 0 {
		// Cut short: what it ran for goes in the durations report.
		parser.outputs[parser.current].Duration = time.Since(parser.began)
	}
	waitErr := cmd.Wait()
	res.Duration = time.Since(start)
	console, _ := os.ReadFile(consolePath)
	res.Console = cleanConsole(console)
	res.Outputs, res.Boot = parser.outputs, parser.boot
	res.Uname = strings.TrimSpace(string(res.Outputs[0].Output))
	res.LSM = strings.TrimSpace(string(res.Outputs[1].Output))
	res.Outputs = res.Outputs[2:]

	fail := func(format string, args ...any) error {
		return fmt.Errorf("guest %s: %s\n--- console tail ---\n%s", m.Kernel.Release, fmt.Sprintf(format, args...), res.consoleExcerpt())
	}
	switch {
	case parent.Err() != nil && !parser.done:
		return res, fail("cancelled: %v%s", context.Cause(parent), parser.running())
	case ctx.Err() != nil && !parser.done:
		return res, fail("timed out after %v%s", timeout, parser.running())
	case bytes.Contains(res.Console, []byte("Kernel panic")):
		return res, fail("kernel panic%s", parser.running())
	case waitErr != nil:
		return res, fail("%s: %v: %s", QEMUBinary, waitErr, strings.TrimSpace(stderr.String()))
	case readErr != nil:
		return res, fail("read results: %v", readErr)
	case !parser.done:
		return res, fail("guest stopped before its init finished%s", parser.running())
	}
	return res, nil
}

func (m Machine) qemuArgs(consolePath string) []string {
	cmdline := DefaultCmdline
	if m.Cmdline != "" {
		cmdline += " " + m.Cmdline
	}
	if m.CountInstructions {
		cmdline += " " + testutils.ICountParam // so the guest knows
	}
	args := []string{
		// One host thread runs every vCPU in turn. With a thread per vCPU,
		// the kernel patching its own code while another vCPU executes it
		// (static keys and BPF trampolines, on every attach and detach)
		// sometimes leaves a vCPU spinning on stale translations: soft
		// lockups in syscall_trace_enter were seen here about one run in
		// three. The guest still has several CPUs, so per-CPU and
		// preemption paths run as on real hardware.
		"-accel", "tcg,thread=single",
		"-cpu", "max",
		"-smp", strconv.Itoa(orDefault(m.CPUs, DefaultCPUs)),
		"-m", strconv.Itoa(orDefault(m.MemoryMiB, DefaultMemoryMiB)),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-monitor", "none",
		"-kernel", m.Kernel.Vmlinuz,
		"-initrd", m.Initramfs.Path,
		"-append", cmdline,
		// ttyS0: the kernel console, to a file. ttyS1: the results, on
		// QEMU's stdout. Both 8250 ports are built into the Debian cloud
		// kernels; virtio-console is a module in 6.1, which has none here.
		"-chardev", "file,id=console,path=" + strings.ReplaceAll(consolePath, ",", ",,"),
		"-serial", "chardev:console",
		"-chardev", "stdio,id=results,signal=off",
		"-serial", "chardev:results",
	}
	if m.CountInstructions {
		// sleep=off: an idle guest's clock jumps to its next timer instead
		// of following the host's.
		args = append(args, "-icount", "shift=0,sleep=off")
	}
	return args
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// resultParser splits the guest's result stream into command outputs.
type resultParser struct {
	prefix  string // "@@vmtest-<nonce> "
	start   time.Time
	outputs []Output
	current int // index of the running command, -1 between commands
	began   time.Time
	boot    time.Duration
	done    bool
}

func newResultParser(ini *Initramfs, start time.Time) *resultParser {
	p := &resultParser{prefix: "@@vmtest-" + ini.nonce + " ", start: start, current: -1}
	for _, c := range ini.Commands {
		p.outputs = append(p.outputs, Output{Command: c})
	}
	return p
}

func (p *resultParser) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			p.line(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (p *resultParser) line(line []byte) {
	if marker, ok := bytes.CutPrefix(line, []byte(p.prefix)); ok {
		p.marker(strings.Fields(string(marker)))
		return
	}
	if p.current >= 0 {
		// The serial port is raw, but be robust to a cooked one.
		line = bytes.ReplaceAll(line, []byte("\r\n"), []byte("\n"))
		p.outputs[p.current].Output = append(p.outputs[p.current].Output, line...)
	}
}

func (p *resultParser) marker(f []string) {
	now := time.Now()
	switch {
	case len(f) == 2 && f[0] == "begin":
		i, err := strconv.Atoi(f[1])
		if err != nil || i < 0 || i >= len(p.outputs) {
			return
		}
		if p.boot == 0 {
			p.boot = now.Sub(p.start)
		}
		p.current, p.began = i, now
	case len(f) == 3 && f[0] == "end":
		i, err1 := strconv.Atoi(f[1])
		code, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || i != p.current {
			return
		}
		o := &p.outputs[i]
		// Drop the newline that starts every marker (see initScript).
		o.Output = bytes.TrimSuffix(o.Output, []byte("\n"))
		o.ExitCode, o.Finished, o.Duration = code, true, now.Sub(p.began)
		p.current = -1
	case len(f) == 1 && f[0] == "done":
		p.done = true
	}
}

// running names the command that was running when the guest stopped.
func (p *resultParser) running() string {
	if p.current < 0 {
		return ""
	}
	return fmt.Sprintf(" (while running %s)", p.outputs[p.current].Command.Name)
}
