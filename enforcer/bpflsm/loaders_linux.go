package bpflsm

import (
	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer/dynloader"
)

// seedLoaders marks the system's dynamic loaders in the loaders inode
// storage, as the kernel would mark them, and returns their paths: the ELF
// interpreters of programs every Debian system has. The kernel learns
// loaders too, as it maps them for the programs it runs (see lsm.bpf.c), but
// a loader run as a program before any dynamic program ran since load would
// not be known yet. Only a root-owned regular file nobody else may write is
// a loader; on errors the kernel learns it.
func seedLoaders(m *ebpf.Map) []string {
	var out []string
	for _, interp := range dynloader.System() {
		if markLoader(m, interp) {
			out = append(out, interp)
		}
	}
	return out
}

func markLoader(m *ebpf.Map, path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 || st.Mode&0o022 != 0 {
		return false
	}
	// Inode storage is keyed by a file descriptor from user space.
	return m.Update(uint32(fd), uint32(1), ebpf.UpdateAny) == nil
}
