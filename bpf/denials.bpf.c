//go:build ignore
/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Denials: what the LSMs refused, seen at the exit of the kernel's security_*
 * entry points: file open, exec, the path operations (create, unlink, mkdir,
 * rmdir, symlink, link, rename, truncate, chmod, chown), socket creation and
 * capabilities. The eBPF alert path of an enforcer whose decisions are not
 * made by programs of ours (AppArmor): a non-zero return from
 * security_file_open is an LSM's refusal (the permission bits were checked
 * before), with the kernel's own objects, so the path is the resolved one
 * and not a caller's string that a DAC EACCES could also have answered.
 *
 * fexit programs (a trampoline, not a breakpoint); only refusals are
 * reported, each on the `denials` ring buffer, whose reserve failures are
 * counted per CPU. Which rule refused is left to user space: the kernel
 * only knows a profile did.
 */
#include "lib/common.h"
#include "lib/path.h"

char LICENSE[] SEC("license") = "GPL";

/* Denial counters (user space sums the CPUs). */
enum ka_deny_counter {
	KA_DENY_CNT_SEEN = 0,      /* refusals seen */
	KA_DENY_CNT_RING_FULL = 1, /* not reported: the ring buffer was full */
	KA_DENY_CNT_BUSY = 2,      /* reported without paths: scratch space was in use */
	KA_DENY_CNT_MAX = 3,
};

/* A record: this header, then the object path, the second path of a link
 * or rename (its new name), and the executable path (no NULs; lengths in
 * the header). */
struct denial {
	__u64 ts; /* bpf_ktime_get_boot_ns */
	__u32 tgid;
	__u32 pid;
	__u32 ppid;
	__u32 uid; /* real uid, as in alerts */
	__u32 owner_uid;
	__s32 ret;  /* what the LSM returned: -EACCES, -EPERM */
	__u32 res0; /* capability, or socket family */
	__u32 res1; /* socket type << 16 | protocol */
	__u8 op;    /* enum ka_op */
	__u8 flags; /* enum ka_event_flag */
	__u16 path_len;
	__u16 exe_len;
	__u16 path2_len;
	__u8 comm[16];
};

struct ka_deny_btf_types {
	enum ka_deny_counter counter;
	enum ka_op op;
	enum ka_event_flag flag;
	struct denial denial;
};
const struct ka_deny_btf_types *ka_deny_unused __attribute__((unused));

struct denial_buf {
	struct denial hdr;
	__u8 data[3 * KA_PATH_MAX];
};

/* 8 MiB: at ~120 bytes a record, some 70,000 refusals queued; a flood
 * fills it only if the reader stops. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} denials SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KA_DENY_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} deny_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct denial_buf);
} denybuf SEC(".maps");

const volatile __u32 self_tgid = 0; /* the daemon: its own refusals are not alerts */

/* The reader is woken once this much is queued and polls otherwise: under
 * a flood one wakeup drains thousands of records (see KA_VIS_WAKEUP_BYTES). */
#define KA_DENY_WAKEUP_BYTES (64 << 10)

static __always_inline __u64 wakeup(void)
{
	return bpf_ringbuf_query(&denials, BPF_RB_AVAIL_DATA) >= KA_DENY_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
										     : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill(struct denial *d, __u8 op, int ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();

	__builtin_memset(d, 0, sizeof(*d));
	d->ts = bpf_ktime_get_boot_ns();
	d->tgid = id >> 32;
	d->pid = (__u32)id;
	d->ppid = BPF_CORE_READ(t, real_parent, tgid);
	d->uid = (__u32)bpf_get_current_uid_gid();
	d->ret = ret;
	d->op = op;
	bpf_get_current_comm(d->comm, sizeof(d->comm));
}

static __always_inline int ignored(void)
{
	return self_tgid && (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

/* copy_object collects the path of (mnt, dentry) into slot and copies its
 * string to dst; its length, or 0 (flags get the path's). */
static __always_inline __u32 copy_object(__u8 *dst, struct vfsmount *mnt, struct dentry *dentry, __u8 *flags)
{
	struct path_buf *pb;

	collect_path(mnt, dentry, KA_PATH_OBJECT);
	pb = path_string(KA_PATH_OBJECT);
	if (!pb)
		return 0;
	*flags |= pb->flags;
	return copy_string(dst, pb);
}

/* report sends a refusal of op on the object (mnt, dentry) (NULL dentry:
 * none) with, for a link or rename, the second name (mnt, dentry2), and
 * res0 and res1, and the caller's executable. */
static __always_inline void report(__u8 op, int ret, struct vfsmount *mnt, struct dentry *dentry,
				   struct dentry *dentry2, __u32 res0, __u32 res1)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct path_buf *pb;
	struct denial_buf *b;
	struct denial *bare;
	__u32 zero = 0, plen = 0, p2len = 0, elen = 0;
	__u64 *claim;

	bump(&deny_counters, KA_DENY_CNT_SEEN);
	b = bpf_map_lookup_elem(&denybuf, &zero);
	claim = b ? claim_scratch() : NULL;
	if (!claim) {
		/* Preempted inside another program on this CPU: the refusal
		 * still goes out, without its paths. */
		bump(&deny_counters, KA_DENY_CNT_BUSY);
		bare = bpf_ringbuf_reserve(&denials, sizeof(*bare), 0);
		if (!bare) {
			bump(&deny_counters, KA_DENY_CNT_RING_FULL);
			return;
		}
		fill(bare, op, ret);
		bare->res0 = res0;
		bare->res1 = res1;
		bare->flags = KA_EV_SCRATCH_BUSY;
		bpf_ringbuf_submit(bare, wakeup());
		return;
	}
	fill(&b->hdr, op, ret);
	b->hdr.res0 = res0;
	b->hdr.res1 = res1;
	if (dentry) {
		b->hdr.owner_uid = BPF_CORE_READ(dentry, d_inode, i_uid.val);
		plen = copy_object(b->data, mnt, dentry, &b->hdr.flags);
	}
	barrier_var(plen);
	plen &= KA_PATH_MAX - 1;
	if (dentry2) {
		/* The paths are read one after the other through one slot:
		 * a new walk, so the first one's string is not reused. */
		p2len = copy_object(&b->data[plen], mnt, dentry2, &b->hdr.flags);
	}
	barrier_var(p2len);
	p2len &= KA_PATH_MAX - 1;
	collect_file(BPF_CORE_READ(t, mm, exe_file), KA_PATH_EXE);
	pb = path_string(KA_PATH_EXE);
	if (pb) {
		if (pb->flags)
			b->hdr.flags |= KA_EV_EXE_TRUNCATED;
		elen = copy_string(&b->data[plen + p2len], pb);
	}
	barrier_var(elen);
	elen &= KA_PATH_MAX - 1;
	b->hdr.path_len = plen;
	b->hdr.path2_len = p2len;
	b->hdr.exe_len = elen;
	if (bpf_ringbuf_output(&denials, b, sizeof(b->hdr) + plen + p2len + elen, wakeup()))
		bump(&deny_counters, KA_DENY_CNT_RING_FULL);
	release_scratch(claim);
}

static __always_inline void report_file(__u8 op, int ret, struct file *f)
{
	report(op, ret, BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), NULL, 0, 0);
}

#define FMODE_WRITE 0x2

SEC("fexit/security_file_open")
int BPF_PROG(ka_deny_open, struct file *file, int ret)
{
	__u8 op;

	if (!ret || ignored())
		return 0;
	op = (BPF_CORE_READ(file, f_mode) & FMODE_WRITE) ? KA_OP_OPEN_WRITE : KA_OP_OPEN_READ;
	report_file(op, ret, file);
	return 0;
}

/* AppArmor decides an exec when the new credentials are prepared, before
 * the bprm_check hook. */
SEC("fexit/security_bprm_creds_for_exec")
int BPF_PROG(ka_deny_exec, struct linux_binprm *bprm, int ret)
{
	if (!ret || ignored())
		return 0;
	report_file(KA_OP_EXEC, ret, BPF_CORE_READ(bprm, file));
	return 0;
}

/* A file mapped executable: the dynamic loader running a program that a
 * profile refuses to map (ld.so PROGRAM). */
SEC("fexit/security_mmap_file")
int BPF_PROG(ka_deny_mmap, struct file *file, unsigned long prot, unsigned long flags, int ret)
{
	if (!ret || !file || !(prot & KA_PROT_EXEC) || ignored())
		return 0;
	report_file(KA_OP_EXEC_MAP, ret, file);
	return 0;
}

SEC("fexit/security_file_mprotect")
int BPF_PROG(ka_deny_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	struct file *file;

	if (!ret || !(prot & KA_PROT_EXEC) || ignored())
		return 0;
	file = BPF_CORE_READ(vma, vm_file);
	if (file)
		report_file(KA_OP_EXEC_MAP, ret, file);
	return 0;
}

SEC("fexit/security_socket_create")
int BPF_PROG(ka_deny_socket, int family, int type, int protocol, int kern, int ret)
{
	if (!ret || kern || ignored())
		return 0;
	/* The type without SOCK_NONBLOCK and SOCK_CLOEXEC, as the hook sees it. */
	report(KA_OP_SOCKET_CREATE, ret, NULL, NULL, NULL, family, ((__u32)(type & 0xf) << 16) | (__u16)protocol);
	return 0;
}

#define CAP_OPT_NOAUDIT 0x2

SEC("fexit/security_capable")
int BPF_PROG(ka_deny_capable, const struct cred *cred, void *ns, int cap, unsigned int opts, int ret)
{
	__u64 eff = 0;

	/* A no-audit check asks whether, not tries: its refusal is no
	 * violation (AppArmor does not log one either). */
	if (!ret || (opts & CAP_OPT_NOAUDIT) || ignored() || cap < 0 || cap > 63)
		return 0;
	/* The capability module, first in the list, refuses what the
	 * credentials lack (an unprivileged chown): that is no policy's
	 * refusal. Only one the credentials allowed is an LSM's. */
	bpf_core_read(&eff, sizeof(eff), &cred->cap_effective);
	if (!(eff & (1ULL << cap)))
		return 0;
	report(KA_OP_CAPABLE, ret, NULL, NULL, NULL, cap, 0);
	return 0;
}

/* The path operations, named by their directory and entry (a new name's
 * dentry is negative: its path is the directory's and its name). */
static __always_inline void report_entry(__u8 op, int ret, const struct path *dir, struct dentry *dentry)
{
	if (ret && !ignored())
		report(op, ret, BPF_CORE_READ(dir, mnt), dentry, NULL, 0, 0);
}

SEC("fexit/security_path_mknod")
int BPF_PROG(ka_deny_mknod, const struct path *dir, struct dentry *dentry, __u64 mode, __u64 dev, int ret)
{
	report_entry(KA_OP_CREATE, ret, dir, dentry);
	return 0;
}

SEC("fexit/security_path_unlink")
int BPF_PROG(ka_deny_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	report_entry(KA_OP_UNLINK, ret, dir, dentry);
	return 0;
}

SEC("fexit/security_path_mkdir")
int BPF_PROG(ka_deny_mkdir, const struct path *dir, struct dentry *dentry, __u64 mode, int ret)
{
	report_entry(KA_OP_MKDIR, ret, dir, dentry);
	return 0;
}

SEC("fexit/security_path_rmdir")
int BPF_PROG(ka_deny_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	report_entry(KA_OP_RMDIR, ret, dir, dentry);
	return 0;
}

SEC("fexit/security_path_symlink")
int BPF_PROG(ka_deny_symlink, const struct path *dir, struct dentry *dentry, const char *old_name, int ret)
{
	report_entry(KA_OP_SYMLINK, ret, dir, dentry);
	return 0;
}

/* A link or rename: the old name and the new, either of which a rule may
 * have refused (a hard link stays within one mount: both on new_dir's). */
SEC("fexit/security_path_link")
int BPF_PROG(ka_deny_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry, int ret)
{
	if (ret && !ignored())
		report(KA_OP_LINK, ret, BPF_CORE_READ(new_dir, mnt), old_dentry, new_dentry, 0, 0);
	return 0;
}

SEC("fexit/security_path_rename")
int BPF_PROG(ka_deny_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, __u64 flags, int ret)
{
	/* Within one mount too (EXDEV otherwise, before this hook). */
	if (ret && !ignored())
		report(KA_OP_RENAME, ret, BPF_CORE_READ(old_dir, mnt), old_dentry, new_dentry, 0, 0);
	return 0;
}

static __always_inline void report_at(__u8 op, int ret, const struct path *path)
{
	if (ret && !ignored())
		report(op, ret, BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry), NULL, 0, 0);
}

SEC("fexit/security_path_truncate")
int BPF_PROG(ka_deny_truncate, const struct path *path, int ret)
{
	report_at(KA_OP_TRUNCATE, ret, path);
	return 0;
}

SEC("fexit/security_path_chmod")
int BPF_PROG(ka_deny_chmod, const struct path *path, __u64 mode, int ret)
{
	report_at(KA_OP_CHMOD, ret, path);
	return 0;
}

SEC("fexit/security_path_chown")
int BPF_PROG(ka_deny_chown, const struct path *path, __u64 uid, __u64 gid, int ret)
{
	report_at(KA_OP_CHOWN, ret, path);
	return 0;
}
