package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// manual is one manual page, written from the program's own --help, so that
// the page says what the packaged binary does, flag for flag.
type manual struct {
	program  string // file name in Bin
	section  int
	title    string // the manual's title line, e.g. "System Administration"
	summary  string // NAME line after the dash
	synopsis string // after the program name
	about    string // DESCRIPTION
	files    [][2]string
	seeAlso  string
}

func manuals() []manual {
	return []manual{
		{
			program: "kubearmor", section: 8, title: "System Administration",
			summary:  "host security daemon enforcing KubeArmorHostPolicy",
			synopsis: "[flags]",
			about: "kubearmor enforces the KubeArmorHostPolicy files in /etc/kubearmor/policies with BPF-LSM " +
				"(AppArmor where BPF-LSM is not available, observe-only where neither is), and reports alerts and " +
				"visibility logs to the journal and to a local API. It runs as kubearmor.service; " +
				"systemctl reload kubearmor (kubearmor --reload, which sends SIGHUP and waits) rescans the policy directory, which is also watched.",
			files: [][2]string{
				{"/etc/kubearmor/kubearmor.yaml", "settings (every key commented with its default)"},
				{"/etc/kubearmor/policies/", "policy files (*.yaml, *.yml)"},
				{"/run/kubearmor/kubearmor.sock", "the local API, for karmor"},
				{"/sys/fs/bpf/kubearmor/", "pinned programs and maps, which keep enforcing across restarts"},
			},
			seeAlso: "karmor(1), systemctl(1), journalctl(1)",
		},
		{
			program: "karmor", section: 1, title: "User Commands",
			summary:  "client of the kubearmor host security daemon",
			synopsis: "command [flags]",
			about:    "karmor streams the daemon's alerts and logs, shows live activity and summaries, and validates and lists policies.",
			files:    [][2]string{{"/run/kubearmor/kubearmor.sock", "the daemon's API socket"}},
			seeAlso:  "kubearmor(8)",
		},
	}
}

// writeManuals writes each manual's gzipped page into dir and returns
// their paths by where they are installed (/usr/share/man/man8/kubearmor.8.gz).
func writeManuals(bin, dir, version string, date time.Time) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range manuals() {
		page, err := m.render(filepath.Join(bin, m.program), version, date)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("%s.%d.gz", m.program, m.section)
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression) // lintian asks for -9
		if err != nil {
			return nil, err
		}
		zw.Write(page)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		out[fmt.Sprintf("/usr/share/man/man%d/%s", m.section, name)] = path
	}
	return out, nil
}

// render runs the program's --help, and that of every subcommand it lists,
// into a page.
func (m manual) render(program, version string, date time.Time) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s %d %q %q %q\n", strings.ToUpper(m.program), m.section, date.Format("2006-01-02"), m.program+" "+version, m.title)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", m.program, roff(m.summary))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n%s\n", m.program, roff(m.synopsis))
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", roff(m.about))
	b.WriteString(".SH USAGE\n")
	queue := [][]string{nil}
	for len(queue) > 0 {
		args := queue[0]
		queue = queue[1:]
		help, err := helpOf(program, args)
		if err != nil {
			return nil, err
		}
		if len(args) > 0 {
			fmt.Fprintf(&b, ".SS %q\n", m.program+" "+strings.Join(args, " "))
		}
		b.WriteString(".nf\n")
		for _, line := range strings.Split(strings.TrimRight(help, "\n"), "\n") {
			b.WriteString(roff(line) + "\n")
		}
		b.WriteString(".fi\n")
		for _, sub := range subcommands(help) {
			queue = append(queue, append(append([]string(nil), args...), sub))
		}
	}
	b.WriteString(".SH FILES\n")
	for _, f := range m.files {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", roff(f[0]), roff(f[1]))
	}
	fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", roff(m.seeAlso))
	return []byte(b.String()), nil
}

func helpOf(program string, args []string) (string, error) {
	cmd := exec.Command(program, append(args, "--help")...)
	cmd.Env = append(os.Environ(), "COLUMNS=80", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) == 0 {
		// The pages are made by running the packaged binaries: a build
		// for another architecture needs an emulator (binfmt) here.
		return "", fmt.Errorf("manual page: %s %s --help (the binaries must run on this machine): %v: %s", program, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// subcommands lists the commands under a cobra help's "Available
// Commands:", but help and completion, which every cobra program has.
func subcommands(help string) []string {
	_, rest, ok := strings.Cut(help, "\nAvailable Commands:\n")
	if !ok {
		return nil
	}
	var subs []string
	for _, line := range strings.Split(rest, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(line, "  ") {
			break
		}
		if f[0] != "help" && f[0] != "completion" {
			subs = append(subs, f[0])
		}
	}
	return subs
}

// roff escapes text for a man page: backslashes, minus signs (a "-" is a
// hyphen to groff), and a leading dot or quote (a request).
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
