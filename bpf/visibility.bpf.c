//go:build ignore
/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Visibility: what processes do, for logs and summaries, on tracepoints
 * (tp_btf: no tracefs needed). Process exec and exit; file opens with the
 * resolved path, flags and result; network connect, accept, bind and listen
 * with family, protocol, addresses, ports and result; and fork, so that the
 * daemon's process tree knows a child that never execs. It never decides.
 *
 * Telemetry goes to its own ring buffer, never the enforcer's alert ring,
 * and passes a per-CPU token bucket first: a flood is cut in the kernel,
 * counted, before it can fill the ring. Every event not delivered is
 * counted by the reason it was not.
 */
#include "lib/common.h"
#include "lib/path.h"

char LICENSE[] SEC("license") = "GPL";

enum ka_vis_type {
	KA_VIS_EXEC = 1,
	KA_VIS_EXIT = 2,
	KA_VIS_OPEN = 3,
	KA_VIS_CONNECT = 4,
	KA_VIS_ACCEPT = 5,
	KA_VIS_BIND = 6,
	KA_VIS_LISTEN = 7,
	KA_VIS_FORK = 8,
};

/* What is observed: hostVisibility in the config. */
enum ka_vis_kind {
	KA_VIS_PROCESS = 1,
	KA_VIS_FILE = 2,
	KA_VIS_NETWORK = 4,
};

/* Telemetry counters (user space sums the CPUs). */
enum ka_vis_counter {
	KA_VIS_CNT_SEEN = 0,      /* events the monitors produced */
	KA_VIS_CNT_THROTTLED = 1, /* dropped by the rate limit */
	KA_VIS_CNT_RING_FULL = 2, /* dropped: the ring buffer was full */
	KA_VIS_CNT_BUSY = 3,      /* dropped: scratch space in use (preempted program) */
	KA_VIS_CNT_UNTRACKED = 4, /* a syscall exit whose entry was not seen */
	KA_VIS_CNT_MAX = 5,
};

/* A record: this header, then for exec and open the path, and for exec the
 * working directory (no NULs; lengths in the header). */
struct vis_event {
	__u64 ts;   /* bpf_ktime_get_boot_ns */
	__u32 type; /* enum ka_vis_type */
	__u32 tgid;
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__s32 ret;    /* the system call's result (exit: the exit code) */
	__u32 oflags; /* open: the flags */
	__u16 path_len;
	__u8 evflags; /* enum ka_event_flag */
	__u8 family;  /* network: AF_INET, AF_INET6, AF_UNIX, ... */
	__u16 sock_type;
	__u16 protocol;
	__u16 lport; /* host order */
	__u16 rport;
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	__u8 comm[16];
	__u8 tty[16];    /* exec: the controlling terminal's name ("pts0"), if any */
	__u16 cwd_len;   /* exec: the working directory's length, after the path */
	__u8 pad[6];
};

struct vis_buf {
	struct vis_event hdr;
	__u8 data[2 * KA_PATH_MAX];
};

struct ka_vis_btf_types {
	enum ka_vis_type type;
	enum ka_vis_kind kind;
	enum ka_vis_counter counter;
	enum ka_event_flag flag;
	struct vis_event event;
};
const struct ka_vis_btf_types *ka_vis_unused __attribute__((unused));

/* Set at load. */
const volatile __u32 vis_kinds = 0;        /* enum ka_vis_kind bits */
const volatile __u64 rate_per_cpu = 0;     /* events per second per CPU; 0: no limit */
const volatile __u64 burst_per_cpu = 0;    /* bucket size */
const volatile __u32 self_tgid = 0;        /* the daemon, whose own work is not logged */
const volatile __u32 only_tgid = 0;        /* 0: every process; else only this one (tests count one generator) */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} telemetry SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KA_VIS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vis_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vis_buf);
} visbuf SEC(".maps");

struct bucket {
	__u64 tokens; /* in 1/1e9 of an event, so that refill needs no division */
	__u64 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bucket);
} buckets SEC(".maps");

/* A system call in progress: what its exit needs from its entry. */
struct pending {
	__u64 arg0;
	__u64 arg1;
	__u64 arg2;
	__u32 nr;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* thread id */
	__type(value, struct pending);
} inflight SEC(".maps");

static __always_inline void vis_count(__u32 idx)
{
	bump(&vis_counters, idx);
}

/* admit takes a token from this CPU's bucket; 0 when it is empty. */
static __always_inline int admit(void)
{
	__u32 zero = 0;
	struct bucket *b;
	__u64 now, full, t;

	vis_count(KA_VIS_CNT_SEEN);
	if (!rate_per_cpu)
		return 1;
	b = bpf_map_lookup_elem(&buckets, &zero);
	if (!b)
		return 1;
	now = bpf_ktime_get_boot_ns();
	full = burst_per_cpu * 1000000000ULL;
	/* A CPU idle for a minute has a full bucket (a burst is at most a
	 * minute's rate), and the product below cannot overflow. */
	if (now - b->last > 60 * 1000000000ULL || now < b->last)
		t = full;
	else
		t = b->tokens + (now - b->last) * rate_per_cpu;
	if (t > full)
		t = full;
	b->last = now;
	if (t < 1000000000ULL) {
		b->tokens = t;
		vis_count(KA_VIS_CNT_THROTTLED);
		return 0;
	}
	b->tokens = t - 1000000000ULL;
	return 1;
}

/* claim_buf returns this CPU's record buffer under a claim that covers it
 * and the path scratch; NULL (counted) when another program holds it. */
static __always_inline struct vis_buf *claim_buf(__u64 **claim)
{
	__u32 zero = 0;
	struct vis_buf *b = bpf_map_lookup_elem(&visbuf, &zero);

	if (!b)
		return NULL;
	*claim = claim_scratch();
	if (!*claim) {
		vis_count(KA_VIS_CNT_BUSY);
		return NULL;
	}
	return b;
}

static __always_inline void fill(struct vis_event *e, __u32 type, struct task_struct *t)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_boot_ns();
	e->type = type;
	e->tgid = BPF_CORE_READ(t, tgid);
	e->pid = BPF_CORE_READ(t, pid);
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	e->uid = BPF_CORE_READ(t, cred, uid.val);
	BPF_CORE_READ_STR_INTO(&e->comm, t, comm);
}

/* The reader is woken only once the ring holds this much; it also polls
 * every few milliseconds. Under a flood it then drains thousands of
 * records a wakeup instead of one, and a lone event still arrives within
 * the poll interval. */
#define KA_VIS_WAKEUP_BYTES (256 << 10)

static __always_inline __u64 wakeup(void)
{
	return bpf_ringbuf_query(&telemetry, BPF_RB_AVAIL_DATA) >= KA_VIS_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
										       : BPF_RB_NO_WAKEUP;
}

/* submit sends the header and len bytes of data (at most two paths). */
static __always_inline void submit(struct vis_buf *b, __u32 len)
{
	barrier_var(len);
	len &= 2 * KA_PATH_MAX - 1;
	if (bpf_ringbuf_output(&telemetry, b, sizeof(b->hdr) + len, wakeup()))
		vis_count(KA_VIS_CNT_RING_FULL);
}

/* copy_path puts the path collected in slot into b->data; its length,
 * also in path_len. */
static __always_inline __u32 copy_path(struct vis_buf *b, __u32 slot)
{
	struct path_buf *pb = path_string(slot);
	__u32 len;

	if (!pb)
		return 0;
	b->hdr.evflags = pb->flags;
	len = copy_string(b->data, pb);
	b->hdr.path_len = len;
	return len;
}

/* copy_cwd puts the working directory collected in slot after the path of
 * off bytes; its length, also in cwd_len. A truncated one is left out. */
static __always_inline __u32 copy_cwd(struct vis_buf *b, __u32 off, __u32 slot)
{
	struct path_buf *pb = path_string(slot);
	__u32 len;

	if (!pb || pb->flags)
		return 0;
	barrier_var(off);
	off &= KA_PATH_MAX - 1;
	len = copy_string(&b->data[off], pb);
	b->hdr.cwd_len = len;
	return len;
}

static __always_inline int ignored(struct task_struct *t)
{
	__u32 tgid = BPF_CORE_READ(t, tgid);

	return (self_tgid && tgid == self_tgid) || (only_tgid && tgid != only_tgid);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ka_vis_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct tty_struct *tty;
	struct vis_buf *b;
	__u64 *claim;
	__u32 len;

	if (!(vis_kinds & KA_VIS_PROCESS) || ignored(p) || !admit())
		return 0;
	b = claim_buf(&claim);
	if (!b)
		return 0;
	fill(&b->hdr, KA_VIS_EXEC, p);
	collect_file(BPF_CORE_READ(bprm, file), KA_PATH_OBJECT);
	len = copy_path(b, KA_PATH_OBJECT);
	/* The working directory and terminal, which the process tree keeps:
	 * read here, since a short-lived process is gone from /proc before
	 * the daemon reads its event. */
	collect_path(BPF_CORE_READ(p, fs, pwd.mnt), BPF_CORE_READ(p, fs, pwd.dentry), KA_PATH_EXE);
	len += copy_cwd(b, len, KA_PATH_EXE);
	tty = BPF_CORE_READ(p, signal, tty);
	if (tty)
		BPF_CORE_READ_STR_INTO(&b->hdr.tty, tty, name);
	submit(b, len);
	release_scratch(claim);
	return 0;
}

/* task_event sends a header-only record of type about task t, with ret,
 * past the rate limit; a full ring is counted. */
static __always_inline void task_event(__u32 type, struct task_struct *t, __s32 ret)
{
	struct vis_event *e;

	if (!admit())
		return;
	e = bpf_ringbuf_reserve(&telemetry, sizeof(*e), 0);
	if (!e) {
		vis_count(KA_VIS_CNT_RING_FULL);
		return;
	}
	fill(e, type, t);
	e->ret = ret;
	bpf_ringbuf_submit(e, wakeup());
}

/* A new process (not a thread): the child, with its parent as ppid. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(ka_vis_fork, struct task_struct *parent, struct task_struct *child)
{
	if ((vis_kinds & KA_VIS_PROCESS) && BPF_CORE_READ(child, pid) == BPF_CORE_READ(child, tgid) && !ignored(child))
		task_event(KA_VIS_FORK, child, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ka_vis_exit, struct task_struct *p)
{
	/* Only the last thread: others of the process still run. */
	if ((vis_kinds & KA_VIS_PROCESS) && !ignored(p) && BPF_CORE_READ(p, signal, live.counter) == 0)
		task_event(KA_VIS_EXIT, p, BPF_CORE_READ(p, exit_code));
	return 0;
}

/* x86-64 system call numbers of the calls observed. */
#define NR_OPEN 2
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_BIND 49
#define NR_LISTEN 50
#define NR_OPENAT 257
#define NR_ACCEPT4 288
#define NR_OPENAT2 437

static __always_inline __u32 wanted(long nr)
{
	switch (nr) {
	case NR_OPEN:
	case NR_OPENAT:
	case NR_OPENAT2:
		return vis_kinds & KA_VIS_FILE;
	case NR_CONNECT:
	case NR_ACCEPT:
	case NR_ACCEPT4:
	case NR_BIND:
	case NR_LISTEN:
		return vis_kinds & KA_VIS_NETWORK;
	}
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ka_vis_sys_enter, struct pt_regs *regs, long id)
{
	struct pending p = {.nr = id};
	__u32 tid;

	if (!wanted(id) || ignored(bpf_get_current_task_btf()))
		return 0;
	p.arg0 = BPF_CORE_READ(regs, di);
	p.arg1 = BPF_CORE_READ(regs, si);
	p.arg2 = BPF_CORE_READ(regs, dx);
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, &p, BPF_ANY);
	return 0;
}

/* fd_file returns the open file fd of the current task, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **arr, *f = NULL;

	if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define AF_INET 2
#define AF_INET6 10

/* sock_of returns the socket behind an open file, or NULL. */
static __always_inline struct sock *sock_of(struct file *f)
{
	struct socket *s;

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	s = BPF_CORE_READ(f, private_data);
	return s ? BPF_CORE_READ(s, sk) : NULL;
}

/* from_sock fills protocol and both ends from a socket. */
static __always_inline void from_sock(struct vis_event *e, struct sock *sk)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sock_type = BPF_CORE_READ(sk, sk_type);
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)e->laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->raddr, sk, __sk_common.skc_daddr);
	} else if (e->family == AF_INET6) {
		BPF_CORE_READ_INTO((struct in6_addr *)e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)e->raddr, sk, __sk_common.skc_v6_daddr);
	}
}

/* from_sockaddr fills the address a connect or bind named, from user
 * memory; ports in network order there. */
static __always_inline void from_sockaddr(struct vis_event *e, const void *uaddr, __u8 *addr, __u16 *port)
{
	__u16 family = 0, p = 0;

	bpf_probe_read_user(&family, sizeof(family), uaddr);
	bpf_probe_read_user(&p, sizeof(p), uaddr + 2);
	e->family = family;
	if (family == AF_INET) {
		*port = __builtin_bswap16(p);
		bpf_probe_read_user(addr, 4, uaddr + 4);
	} else if (family == AF_INET6) {
		*port = __builtin_bswap16(p);
		bpf_probe_read_user(addr, 16, uaddr + 8);
	}
}

static __always_inline void file_exit(struct vis_buf *b, struct task_struct *t, struct pending *p, long ret)
{
	struct file *f;
	__u32 len = 0;
	const char *name;
	long n;

	fill(&b->hdr, KA_VIS_OPEN, t);
	b->hdr.ret = ret;
	if (ret >= 0 && (f = fd_file(t, ret))) {
		b->hdr.oflags = BPF_CORE_READ(f, f_flags);
		collect_file(f, KA_PATH_OBJECT);
		len = copy_path(b, KA_PATH_OBJECT);
	} else {
		/* Failed: the name as the caller gave it. */
		name = (const char *)(p->nr == NR_OPEN ? p->arg0 : p->arg1);
		b->hdr.oflags = p->nr == NR_OPEN ? p->arg1 : p->nr == NR_OPENAT ? p->arg2 : 0;
		n = bpf_probe_read_user_str(b->data, KA_PATH_MAX, name);
		len = n > 0 ? n - 1 : 0;
		b->hdr.path_len = len;
	}
	submit(b, len);
}

static __always_inline void net_exit(struct vis_buf *b, struct task_struct *t, struct pending *p, long ret)
{
	struct vis_event *e = &b->hdr;
	struct sock *sk;

	switch (p->nr) {
	case NR_CONNECT:
		fill(e, KA_VIS_CONNECT, t);
		break;
	case NR_BIND:
		fill(e, KA_VIS_BIND, t);
		break;
	case NR_LISTEN:
		fill(e, KA_VIS_LISTEN, t);
		break;
	default:
		fill(e, KA_VIS_ACCEPT, t);
	}
	e->ret = ret;
	/* accept: the new socket; the others: the one they were called on. */
	sk = sock_of(fd_file(t, p->nr == NR_ACCEPT || p->nr == NR_ACCEPT4 ? ret : (long)(int)p->arg0));
	if (p->nr == NR_BIND) {
		/* The address asked for; once bound, the socket's (port 0
		 * asked for one, the socket has the one it got). */
		from_sockaddr(e, (const void *)p->arg1, e->laddr, &e->lport);
		if (sk && ret == 0)
			from_sock(e, sk);
		else if (sk)
			e->protocol = BPF_CORE_READ(sk, sk_protocol);
	} else {
		if (sk)
			from_sock(e, sk);
		/* A connect names its peer, whatever came of it. */
		if (p->nr == NR_CONNECT)
			from_sockaddr(e, (const void *)p->arg1, e->raddr, &e->rport);
	}
	submit(b, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ka_vis_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	long nr = BPF_CORE_READ(regs, orig_ax);
	__u32 kind = wanted(nr);
	struct pending p, *pp;
	struct vis_buf *b;
	__u64 *claim;

	if (!kind || ignored(t))
		return 0;
	pp = bpf_map_lookup_elem(&inflight, &tid);
	if (!pp || pp->nr != nr) {
		vis_count(KA_VIS_CNT_UNTRACKED);
		return 0;
	}
	p = *pp;
	bpf_map_delete_elem(&inflight, &tid);
	if (!admit())
		return 0;
	b = claim_buf(&claim);
	if (!b)
		return 0;
	if (kind & KA_VIS_FILE)
		file_exit(b, t, &p, ret);
	else
		net_exit(b, t, &p, ret);
	release_scratch(claim);
	return 0;
}
