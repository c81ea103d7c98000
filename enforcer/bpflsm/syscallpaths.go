package bpflsm

// syscallPath says which argument of an x86-64 system call is a path, and
// which is the directory file descriptor a relative path starts from (-1:
// the working directory). System calls not listed take no path: a syscall
// rule with a path on them is an error.
type syscallPath struct {
	path, dirfd int8
}

// syscallPathArg returns where a system call's path argument is.
func syscallPathArg(name string) (syscallPath, bool) {
	switch name {
	case "open", "creat", "unlink", "rmdir", "mkdir", "mknod", "rename", "link", "chmod", "chown", "lchown",
		"truncate", "execve", "stat", "lstat", "access", "readlink", "utime", "utimes", "chdir", "chroot",
		"umount2", "setxattr", "lsetxattr", "getxattr", "lgetxattr", "listxattr", "llistxattr", "removexattr",
		"lremovexattr", "swapon", "swapoff", "acct", "pivot_root", "inotify_add_watch", "uselib", "statfs":
		if name == "inotify_add_watch" {
			return syscallPath{1, -1}, true
		}
		return syscallPath{0, -1}, true
	case "openat", "openat2", "unlinkat", "mkdirat", "mknodat", "renameat", "renameat2", "linkat", "fchmodat",
		"fchmodat2", "fchownat", "execveat", "newfstatat", "statx", "faccessat", "faccessat2", "readlinkat",
		"utimensat", "futimesat", "name_to_handle_at", "open_tree", "move_mount", "fsconfig":
		return syscallPath{1, 0}, true
	case "symlink":
		return syscallPath{1, -1}, true // the new link's path
	case "symlinkat":
		return syscallPath{2, 1}, true
	case "mount":
		return syscallPath{1, -1}, true // the mount point
	case "fanotify_mark":
		return syscallPath{4, 3}, true
	}
	return syscallPath{}, false
}
