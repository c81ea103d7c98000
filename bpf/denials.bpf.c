//go:build ignore
/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Denials: what the LSMs refused, seen at the exit of the kernel's security_*
 * entry points. The eBPF alert path of an enforcer whose decisions are not
 * made by programs of ours (AppArmor): a non-zero return from
 * security_file_open is an LSM's refusal (the permission bits were checked
 * before), with the kernel's own file object, so the path is the resolved
 * one and not a caller's string that a DAC EACCES could also have answered.
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

/* A record: this header, then the object path, then the executable path
 * (no NULs; lengths in the header). */
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
	__u8 pad[2];
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
	__u8 data[2 * KA_PATH_MAX];
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

/* report sends a refusal of op on file f (NULL: none) with res0 and res1,
 * and the caller's executable. */
static __always_inline void report(__u8 op, int ret, struct file *f, __u32 res0, __u32 res1)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct path_buf *pb;
	struct denial_buf *b;
	struct denial *bare;
	__u32 zero = 0, plen = 0, elen = 0;
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
	if (f) {
		b->hdr.owner_uid = BPF_CORE_READ(f, f_inode, i_uid.val);
		collect_file(f, KA_PATH_OBJECT);
		pb = path_string(KA_PATH_OBJECT);
		if (pb) {
			b->hdr.flags |= pb->flags;
			plen = copy_string(b->data, pb);
		}
	}
	collect_file(BPF_CORE_READ(t, mm, exe_file), KA_PATH_EXE);
	pb = path_string(KA_PATH_EXE);
	if (pb) {
		if (pb->flags)
			b->hdr.flags |= KA_EV_EXE_TRUNCATED;
		barrier_var(plen);
		plen &= KA_PATH_MAX - 1;
		elen = copy_string(&b->data[plen], pb);
	}
	b->hdr.path_len = plen;
	b->hdr.exe_len = elen;
	barrier_var(elen);
	elen &= KA_PATH_MAX - 1;
	if (bpf_ringbuf_output(&denials, b, sizeof(b->hdr) + plen + elen, wakeup()))
		bump(&deny_counters, KA_DENY_CNT_RING_FULL);
	release_scratch(claim);
}

#define FMODE_WRITE 0x2

SEC("fexit/security_file_open")
int BPF_PROG(ka_deny_open, struct file *file, int ret)
{
	__u8 op;

	if (!ret || ignored())
		return 0;
	op = (BPF_CORE_READ(file, f_mode) & FMODE_WRITE) ? KA_OP_OPEN_WRITE : KA_OP_OPEN_READ;
	report(op, ret, file, 0, 0);
	return 0;
}

/* AppArmor decides an exec when the new credentials are prepared, before
 * the bprm_check hook. */
SEC("fexit/security_bprm_creds_for_exec")
int BPF_PROG(ka_deny_exec, struct linux_binprm *bprm, int ret)
{
	if (!ret || ignored())
		return 0;
	report(KA_OP_EXEC, ret, BPF_CORE_READ(bprm, file), 0, 0);
	return 0;
}

SEC("fexit/security_socket_create")
int BPF_PROG(ka_deny_socket, int family, int type, int protocol, int kern, int ret)
{
	if (!ret || kern || ignored())
		return 0;
	/* The type without SOCK_NONBLOCK and SOCK_CLOEXEC, as the hook sees it. */
	report(KA_OP_SOCKET_CREATE, ret, NULL, family, ((__u32)(type & 0xf) << 16) | (__u16)protocol);
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
	report(KA_OP_CAPABLE, ret, NULL, cap, 0);
	return 0;
}
