package apparmor

import (
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// avc is an AppArmor decision as the kernel's audit record (type 1400,
// AVC) tells it.
type avc struct {
	Denied  bool   // apparmor="DENIED"; else "AUDIT" (an audited allow)
	Profile string // the profile that decided
	Op      match.Op
	Path    string
	Cap     policy.Capability
	Socket  policy.Socket
	PID     uint32
	FSUID   uint32
	OUID    uint32 // the file's owner
	Comm    string
}

// avcFileOps are AppArmor's names of the file operations besides open.
var avcFileOps = map[string]match.Op{
	"mknod": match.OpCreate, "unlink": match.OpUnlink, "rmdir": match.OpRmdir, "mkdir": match.OpMkdir,
	"rename_src": match.OpRename, "rename_dest": match.OpRename, "link": match.OpLink, "symlink": match.OpSymlink,
	"truncate": match.OpTruncate, "chmod": match.OpChmod, "chown": match.OpChown,
}

// families and socket types as AppArmor names them in records.
var (
	avcFamilies = map[string]int{"inet": 2, "inet6": 10, "packet": 17}
	avcTypes    = map[string]int{"stream": 1, "dgram": 2, "raw": 3, "rdm": 4, "seqpacket": 5, "dccp": 6, "packet": 10}
)

// parseAVC reads an AppArmor record of one of our profiles. ok is false for
// anything else: other types, other profiles (a distribution's), complain
// mode's ALLOWED, operations no rule kind covers.
func parseAVC(m *auparse.AuditMessage) (a avc, ok bool) {
	if m.RecordType != auparse.AUDIT_AVC {
		return a, false
	}
	d, err := m.Data()
	if err != nil {
		return a, false
	}
	switch d["apparmor"] {
	case "DENIED":
		a.Denied = true
	case "AUDIT":
	default:
		return a, false
	}
	a.Profile = d["profile"]
	if a.Profile != HostProfile && !strings.HasPrefix(a.Profile, sourceProfilePrefix) {
		return a, false
	}
	a.Path, a.Comm = d["name"], d["comm"]
	a.PID, a.FSUID, a.OUID = num(d["pid"]), num(d["fsuid"]), num(d["ouid"])
	mask := d["requested_mask"]
	op := d["operation"]
	if fileOp, ok := avcFileOps[op]; ok {
		a.Op = fileOp
		return a, true
	}
	switch op {
	case "exec":
		a.Op = match.OpExec
	case "open":
		a.Op = match.OpOpenRead
		if strings.ContainsAny(mask, "wac") {
			a.Op = match.OpOpenWrite
		}
	case "file_mmap", "file_mprotect":
		// Mapped executable ("m"): what the loader does to run a program.
		if !strings.Contains(mask, "m") {
			return a, false
		}
		a.Op = match.OpExecMap
	case "capable":
		c, known := policy.ParseCapability(d["capname"])
		if !known {
			return a, false
		}
		a.Op, a.Cap = match.OpCapable, c
	case "create":
		fam, known := avcFamilies[d["family"]]
		if !known {
			return a, false
		}
		a.Op = match.OpSocketCreate
		a.Socket = policy.Socket{Family: fam, Type: avcTypes[d["sock_type"]], Protocol: int(num(d["protocol"]))}
	default:
		return a, false
	}
	return a, true
}

func num(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}
