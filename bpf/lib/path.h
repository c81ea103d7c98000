/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Paths as the kernel's d_path sees them, from any program type
 * (bpf_d_path is limited to sleepable LSM programs and a few hooks): walk the
 * dentries and mounts of a (mount, dentry) pair up to the root of the mount
 * tree. The walk only records dentry pointers and adds up the length; names
 * are read later, one at a time, as the trie walk needs them, so an open that
 * no rule can match pays for a few pointer reads and one lookup, not for a
 * path string. Loops are bpf_loop, so any depth up to KA_MAX_DEPTH costs no
 * verifier complexity.
 *
 * The path is the host's: what the file is called in the initial mount
 * namespace. Each mount the walk stands on is first replaced by its
 * canonical host mount (canon_mount): a copy of a mount in another
 * namespace, a bind mount, the private mounts behind an overlay's layers all
 * name their files as the host mount they show does. A file no host mount
 * shows is flagged KA_EV_NO_HOST and walked in its own namespace, so that an
 * alert can still say what it was called there.
 */
#ifndef KA_PATH_H
#define KA_PATH_H

#include "common.h"

enum {
	KA_PATH_OBJECT = 0, /* what the operation is done to */
	KA_PATH_EXE = 1,    /* the executable of the process doing it */
	KA_PATH_SLOTS = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KA_PATH_SLOTS);
	__type(key, __u32);
	__type(value, struct path_buf);
} paths SEC(".maps");


/* The epochs: KA_EPOCH_NAMESPACE moves with whatever changes the path of a
 * directory (directory renames, rmdir, mounts, unmounts, mount moves,
 * pivot_root); KA_EPOCH_NAMES with that and whatever gives a file another
 * name (any rename, a hard link), which the file cache depends on. */
enum ka_epoch {
	KA_EPOCH_NAMESPACE = 0,
	KA_EPOCH_NAMES = 1,
	KA_EPOCHS = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KA_EPOCHS);
	__type(key, __u32);
	__type(value, __u64);
} epoch SEC(".maps");

static __always_inline __u64 read_epoch(__u32 which)
{
	__u64 *e = bpf_map_lookup_elem(&epoch, &which);

	return e ? *(volatile __u64 *)e : 0;
}

/* bump_epoch marks a change to the paths of directories (and so of names). */
static __always_inline void bump_epoch(void)
{
	bump(&epoch, KA_EPOCH_NAMESPACE);
	bump(&epoch, KA_EPOCH_NAMES);
}


/* bump_names marks that a file may have another name. */
static __always_inline void bump_names(void)
{
	bump(&epoch, KA_EPOCH_NAMES);
}

/*
 * The host's mount namespace and user namespace: init_task's, found once by
 * climbing real_parent from whichever task runs first (every chain ends at
 * init_task, its own parent).
 */
struct host_info {
	__u64 mnt_ns;
	__u64 user_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct host_info);
} host SEC(".maps");

struct climb_ctx {
	__u64 task;
	__u32 top;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct climb_ctx);
} climb_state SEC(".maps");

static long climb_step(__u32 i, void *unused)
{
	struct climb_ctx *c = bpf_map_lookup_elem(&climb_state, &(__u32){0});
	struct task_struct *t, *p;

	if (!c)
		return 1;
	t = (struct task_struct *)c->task;
	p = BPF_CORE_READ(t, real_parent);
	if (!p)
		return 1;
	if (p == t) {
		c->top = 1;
		return 1;
	}
	c->task = (__u64)p;
	return 0;
}

static __always_inline struct host_info *host_info(void)
{
	struct host_info *h = bpf_map_lookup_elem(&host, &(__u32){0});
	struct climb_ctx *c = bpf_map_lookup_elem(&climb_state, &(__u32){0});
	struct mnt_namespace *ns;
	struct task_struct *t;

	if (!h || !c)
		return NULL;
	if (*(volatile __u64 *)&h->mnt_ns)
		return h;
	c->task = bpf_get_current_task();
	c->top = 0;
	bpf_loop(1 << 16, climb_step, NULL, 0);
	if (!c->top)
		return NULL;
	t = (struct task_struct *)c->task;
	ns = BPF_CORE_READ(t, nsproxy, mnt_ns);
	if (!ns)
		return NULL;
	/* Every writer writes the same values; mnt_ns last, as readers test it. */
	h->user_ns = (__u64)BPF_CORE_READ(ns, user_ns);
	h->mnt_ns = (__u64)ns;
	return h;
}

/* bump_mounts marks a change of mounts, made by the current task. Only a
 * mount namespace the initial user namespace owns can change the host's
 * mounts (a less privileged one receives, never sends, propagation), so an
 * unprivileged user mounting in a namespace of their own does not make
 * every cache start over. */
static __always_inline void bump_mounts(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct host_info *h = host_info();

	if (h && (__u64)BPF_CORE_READ(task, nsproxy, mnt_ns, user_ns) != h->user_ns)
		return;
	bump_epoch();
}

/*
 * The canonical host mount for a mount of super block sb whose root is
 * top (or for a dentry top reached through no known mount): of the host
 * namespace's mounts of sb whose root is top or above it, the one whose root
 * is nearest sb's root, the earliest mounted (lowest ID) among equals. Found
 * by walking sb's list of mounts, and remembered under the namespace epoch,
 * which moves with every mount that can change the host's.
 */
struct canon_key {
	__u64 sb;
	__u64 top;
};

struct canon_val {
	__u64 epoch;
	__u64 mnt; /* struct mount *; 0: no host mount shows top */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct canon_key);
	__type(value, struct canon_val);
} canon SEC(".maps");

#define KA_CANON_DEPTH 1024 /* top's ancestors walked */
#define KA_CANON_ROOTS 32   /* of them, those nearest sb's root that a host mount's root may be */
#define KA_CANON_MOUNTS 8192 /* mounts of one super block looked at */

struct canon_ctx {
	__u64 host;  /* struct mnt_namespace * */
	__u64 head;  /* where sb's list of mounts ends (first_mount) */
	__u64 pos;   /* the mount to look at next; 0: no more */
	__u64 best;  /* struct mount * */
	__u64 last;  /* the dentry walked last */
	__s32 best_idx;
	__s32 best_id;
	__u32 n;     /* dentries walked: top is 0 */
	__u32 pad;
	struct canon_key k;
	struct canon_val v;
	/* Dentry i of the walk at ring[i % KA_CANON_ROOTS]: at the end, the
	 * KA_CANON_ROOTS nearest sb's root. */
	__u64 ring[KA_CANON_ROOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct canon_ctx);
} canon_state SEC(".maps");

static long chain_step(__u32 i, void *unused)
{
	struct canon_ctx *c = bpf_map_lookup_elem(&canon_state, &(__u32){0});
	struct dentry *d, *up;

	if (!c)
		return 1;
	d = (struct dentry *)c->last;
	up = BPF_CORE_READ(d, d_parent);
	if (!up || up == d)
		return 1;
	c->last = (__u64)up;
	c->n++;
	c->ring[c->n & (KA_CANON_ROOTS - 1)] = (__u64)up;
	return 0;
}

/* A super block's mounts: the first (0: none) and the one after m. head is
 * where a list_head list ends (kernels before 6.17). */
static __always_inline __u64 first_mount(__u64 sb, __u64 *head)
{
	__u64 next;

	if (bpf_core_field_exists(struct mount___mountlist, mnt_next_for_sb)) {
		*head = 0;
		return (__u64)BPF_CORE_READ((struct super_block___mountlist *)sb, s_mounts);
	}
	*head = sb + bpf_core_field_offset(struct super_block, s_mounts);
	next = (__u64)BPF_CORE_READ((struct super_block *)sb, s_mounts.next);
	return !next || next == *head ? 0 : next - bpf_core_field_offset(struct mount, mnt_instance);
}

static __always_inline __u64 next_mount(__u64 m, __u64 head)
{
	__u64 next;

	if (bpf_core_field_exists(struct mount___mountlist, mnt_next_for_sb))
		return (__u64)BPF_CORE_READ((struct mount___mountlist *)m, mnt_next_for_sb);
	next = (__u64)BPF_CORE_READ((struct mount *)m, mnt_instance.next);
	return !next || next == head ? 0 : next - bpf_core_field_offset(struct mount, mnt_instance);
}

static long mounts_step(__u32 i, void *unused)
{
	struct canon_ctx *c = bpf_map_lookup_elem(&canon_state, &(__u32){0});
	struct mount *m;
	__u64 root;
	__s32 idx = -1;
	int id;

	if (!c || !c->pos)
		return 1;
	m = (struct mount *)c->pos;
	c->pos = next_mount(c->pos, c->head);
	if ((__u64)BPF_CORE_READ(m, mnt_ns) != c->host)
		return 0;
	root = (__u64)BPF_CORE_READ(m, mnt.mnt_root);
	/* Its index in the walk, if it is one of the last KA_CANON_ROOTS. */
#pragma unroll
	for (__s32 k = 0; k < KA_CANON_ROOTS; k++) {
		__s32 j = (__s32)c->n - k;

		if (j >= 0 && c->ring[j & (KA_CANON_ROOTS - 1)] == root) {
			idx = j;
			break;
		}
	}
	if (idx < 0)
		return 0;
	id = BPF_CORE_READ(m, mnt_id);
	if (idx > c->best_idx || (idx == c->best_idx && id < c->best_id)) {
		c->best_idx = idx;
		c->best_id = id;
		c->best = (__u64)m;
	}
	return 0;
}

/* vfs_of returns the struct vfsmount * of a struct mount * (0 for 0, and
 * for the values that are not mounts): the caches hold mounts as the hooks
 * get them. */
static __always_inline __u64 vfs_of(__u64 mount)
{
	return mount > 1 ? mount + bpf_core_field_offset(struct mount, mnt) : 0;
}

/* canon_peek returns the remembered canonical mount for (sb, top), without
 * working it out: 0 when there is none, or none is remembered. */
static __always_inline __u64 canon_peek(__u64 sb, __u64 top, __u64 ep)
{
	struct canon_key k = {.sb = sb, .top = top};
	struct canon_val *v = bpf_map_lookup_elem(&canon, &k);

	return v && v->epoch == ep ? v->mnt : 0;
}

/* What canon_mount returns besides a mount: the host's namespace is not
 * known yet (the caller keeps the mount it has), or the search could not
 * tell (fail closed: the path is unresolvable). */
#define KA_CANON_NO_NS (~0ULL)
#define KA_CANON_UNKNOWN 1ULL

/* canon_mount returns the canonical host mount (struct mount *) for a mount
 * raw (0: none known) of super block sb whose root is top (or for a dentry
 * top), 0 if no host mount shows top, or KA_CANON_NO_NS / KA_CANON_UNKNOWN.
 * A host mount of the whole file system is taken as it is, without a
 * search: however many mounts others make, the host's own stay named. A
 * global function: verified once, not at every call site. */
__attribute__((noinline)) __u64 canon_mount(__u64 sb, __u64 top, __u64 raw)
{
	__u32 which = KA_EPOCH_NAMESPACE;
	struct canon_val *old;
	struct canon_ctx *c = bpf_map_lookup_elem(&canon_state, &(__u32){0});
	struct host_info *h;
	struct dentry *last;
	__u64 *ep;

	if (!sb || !top)
		return 0;
	h = host_info();
	ep = bpf_map_lookup_elem(&epoch, &which);
	if (!h || !ep || !c)
		return KA_CANON_NO_NS;
	if (raw && (__u64)BPF_CORE_READ((struct mount *)raw, mnt_ns) == h->mnt_ns &&
	    top == (__u64)BPF_CORE_READ((struct super_block *)sb, s_root))
		return raw;
	c->k.sb = sb;
	c->k.top = top;
	c->v.epoch = *(volatile __u64 *)ep;
	old = bpf_map_lookup_elem(&canon, &c->k);
	/* Trusted while the epoch holds and the mount is still the host's, of
	 * sb: a mount move or an automount may not have moved the epoch. */
	if (old && old->epoch == c->v.epoch) {
		struct mount *om = (struct mount *)old->mnt;
		struct vfsmount *ov;

		if (!om)
			return 0;
		ov = (struct vfsmount *)((__u64)om + bpf_core_field_offset(struct mount, mnt));
		if ((__u64)BPF_CORE_READ(om, mnt_ns) == h->mnt_ns && (__u64)BPF_CORE_READ(ov, mnt_sb) == sb)
			return (__u64)om;
	}
	c->host = h->mnt_ns;
	c->last = top;
	c->n = 0;
	c->ring[0] = top;
	bpf_loop(KA_CANON_DEPTH, chain_step, NULL, 0);
	/* A local first: inside BPF_CORE_READ, c->last would be relocated
	 * against kernel types too, and fail. */
	last = (struct dentry *)c->last;
	if ((__u64)BPF_CORE_READ(last, d_parent) != (__u64)last)
		return KA_CANON_UNKNOWN; /* deeper than the walk goes: no root reached */
	c->pos = first_mount(sb, &c->head);
	c->best = 0;
	c->best_idx = -1;
	c->best_id = 0;
	bpf_loop(KA_CANON_MOUNTS, mounts_step, NULL, 0);
	if (c->pos) {
		/* More mounts than looked at (someone made thousands): what was
		 * not seen may be the one. Not remembered, and fails closed. */
		count(KA_CNT_CANON_CUT);
		return KA_CANON_UNKNOWN;
	}
	c->v.mnt = c->best;
	bpf_map_update_elem(&canon, &c->k, &c->v, BPF_ANY);
	return c->v.mnt;
}

/* to_number returns p as a plain number: copied out of the stack slot it
 * was spilled to, the verifier sees bytes, not a pointer (on the stack, not
 * in a shared map: a preempting program cannot change it meanwhile). */
static __always_inline __u64 to_number(const void *p)
{
	__u64 n = 0;

	bpf_probe_read_kernel(&n, sizeof(n), &p);
	return n;
}

/* Loop state lives in a per-CPU map, not on the stack: the verifier tracks
 * stack scalars precisely across bpf_loop iterations and would explore every
 * iteration separately, while map contents are opaque to it. */
struct collect_ctx {
	__u64 dentry;   /* struct dentry *, read only through BPF_CORE_READ */
	__u64 mnt;      /* struct mount * */
	__u64 mnt_root; /* struct dentry * */
	__u32 slot;
	__u32 n;
	__u32 total; /* string length so far */
	__u32 done;
	__u32 truncated;
	__u32 detached;
	__u32 no_host;   /* no host mount shows the file: walked in its own namespace */
	__u32 pad;
	__u64 start_mnt; /* the canonical mount the walk started on (0: none) */
	/* An overlay no host mount shows: at its root (mnt_root) the walk goes
	 * on at its upper layer's root, on that layer's host mount. */
	__u64 up_dentry;
	__u64 up_mnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct collect_ctx);
} collect_state SEC(".maps");

static long collect_step(__u32 i, void *unused)
{
	__u32 zero = 0, len;
	struct collect_ctx *c = bpf_map_lookup_elem(&collect_state, &zero);
	struct path_buf *pb;
	struct dentry *d, *up;

	if (!c)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &c->slot);
	if (!pb)
		return 1;
	d = (struct dentry *)c->dentry;
	if (c->dentry == c->mnt_root && c->up_dentry) {
		/* A local first: inside BPF_CORE_READ, c->up_mnt would be
		 * relocated against kernel types too, and fail. */
		struct mount *um = (struct mount *)c->up_mnt;

		c->dentry = c->up_dentry;
		c->mnt = (__u64)um;
		c->mnt_root = (__u64)BPF_CORE_READ(um, mnt.mnt_root);
		c->up_dentry = 0;
		return 0;
	}
	if (c->dentry == c->mnt_root && c->mnt) {
		struct mount *mnt = (struct mount *)c->mnt;
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
		__u64 next = (__u64)parent, h;

		if (!parent || parent == mnt) {
			c->done = 1;
			return 1;
		}
		c->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		if (!c->no_host) {
			/* The parent may be a bind mount too: if its canonical
			 * mount is known, the walk goes on there. (Not worked out
			 * here: a search inside this loop would nest the calls
			 * past the verifier's stack.) */
			h = canon_peek((__u64)BPF_CORE_READ(parent, mnt.mnt_sb), (__u64)BPF_CORE_READ(parent, mnt.mnt_root),
				       read_epoch(KA_EPOCH_NAMESPACE));
			if (h > KA_CANON_UNKNOWN)
				next = h;
		}
		c->mnt = next;
		c->mnt_root = (__u64)BPF_CORE_READ((struct mount *)next, mnt.mnt_root);
		return 0;
	}
	up = BPF_CORE_READ(d, d_parent);
	len = BPF_CORE_READ(d, d_name.len);
	if (!up || up == d) {
		/* Not reachable from the root of its mount: a pseudo file like a
		 * memfd, or a detached tree. Its name alone identifies it, as
		 * d_path does ("memfd:x"), and no path rule can match it. */
		c->done = 1;
		c->detached = 1;
		if (c->n == 0 && len > 0 && len < KA_NAME_LEN) {
			pb->dent[0] = (__u64)d;
			c->n = 1;
		}
		return 1;
	}
	c->total += len + 1;
	if (len == 0 || len >= KA_NAME_LEN || c->total > KA_PATH_MAX - 1 || c->n >= KA_MAX_DEPTH) {
		c->truncated = 1;
		return 1;
	}
	pb->dent[c->n & (KA_MAX_DEPTH - 1)] = (__u64)d;
	c->n++;
	c->dentry = (__u64)up;
	return 0;
}


#define KA_OVERLAYFS_MAGIC 0x794c7630

/* Where the overlay module's inode (struct ovl_inode) keeps its struct
 * inode and its upper dentry: set by the loader from the module's BTF,
 * which it reads from the module file when the module is not loaded yet (a
 * user's mount can load it at any time, long after these programs were
 * built, so CO-RE against the loaded module's types would not do). 0: not
 * known, and the verifier drops the code that reads them. */
const volatile __u32 ka_ovl_inode_off = 0;
const volatile __u32 ka_ovl_upper_off = 0;

/* overlay_upper_root sets *up (map memory: no stack, which the walk's
 * callers have little of) to the root of the upper layer of the overlay
 * super block sb, where whatever a process changes through the overlay
 * lands: 0 for a read-only overlay, or where the module's layout is not
 * known. */
static __always_inline void overlay_upper_root(__u64 sb, __u64 *up)
{
	struct dentry *root = BPF_CORE_READ((struct super_block *)sb, s_root);
	__u64 inode = (__u64)BPF_CORE_READ(root, d_inode); /* read, so a number already */

	*up = 0;
	if (!ka_ovl_upper_off || !inode)
		return;
	bpf_probe_read_kernel(up, sizeof(*up), (void *)(inode - ka_ovl_inode_off + ka_ovl_upper_off));
}

/* collect_path fills paths[slot] with the components of (vfs, dentry). A
 * NULL dentry gives an empty path. */
static __always_inline struct path_buf *collect_path_here(struct vfsmount *vfs, struct dentry *dentry, __u32 slot)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	struct collect_ctx *c = bpf_map_lookup_elem(&collect_state, &zero);
	__u64 raw = 0, sb, top, h;

	if (!pb || !c)
		return NULL;
	pb->n = 0;
	pb->flags = 0;
	pb->mode = KA_PB_DENTRY;
	pb->have_string = 0;
	if (!dentry) {
		pb->buf[KA_PATH_MAX - 1] = 0;
		pb->start = KA_PATH_MAX - 1;
		pb->have_string = 1; /* the empty string: no path at all */
		return pb;
	}
	c->dentry = (__u64)dentry;
	c->no_host = 0;
	c->n = 0;
	c->total = 0;
	c->done = 0;
	c->truncated = 0;
	c->detached = 0;
	c->up_dentry = 0;
	if (vfs) {
		raw = to_number(vfs) - bpf_core_field_offset(struct mount, mnt);
		sb = (__u64)BPF_CORE_READ(vfs, mnt_sb);
		top = (__u64)BPF_CORE_READ(vfs, mnt_root);
	} else {
		/* A dentry reached through no mount we know (an overlay layer's
		 * file on 6.1): the host mount that shows it names it. */
		sb = (__u64)BPF_CORE_READ(dentry, d_sb);
		top = to_number(dentry);
	}
	h = canon_mount(sb, top, raw);
	if (h == KA_CANON_NO_NS)
		h = raw; /* the host's namespace is unknown: the mount as it is */
	if (h == KA_CANON_UNKNOWN) {
		/* Walked as it is, for the alert, and flagged unresolvable. */
		c->truncated = 1;
		h = raw;
	}
	if (!h && BPF_CORE_READ((struct super_block *)sb, s_magic) == KA_OVERLAYFS_MAGIC) {
		/* An overlay only a private namespace shows: what a process
		 * does through it (unlink, rename, chmod, ...) is done to its
		 * upper layer, named by the host mount that shows that. */
		struct dentry *up;

		overlay_upper_root(sb, &c->up_dentry);
		up = (struct dentry *)c->up_dentry;
		c->up_mnt = up ? canon_mount((__u64)BPF_CORE_READ(up, d_sb), (__u64)up, 0) : 0;
		if (c->up_mnt == KA_CANON_UNKNOWN)
			c->truncated = 1;
		if (c->up_mnt > KA_CANON_UNKNOWN && c->up_mnt != KA_CANON_NO_NS) {
			c->mnt = 0;
			c->mnt_root = (__u64)BPF_CORE_READ((struct super_block *)sb, s_root);
		} else {
			c->up_dentry = 0;
		}
	}
	if (c->up_dentry) {
		/* Walked below to the overlay's root, then on the upper layer. */
	} else if (h) {
		c->mnt = h;
		c->mnt_root = (__u64)BPF_CORE_READ((struct mount *)h, mnt.mnt_root);
	} else {
		c->no_host = 1;
		c->mnt = raw;
		c->mnt_root = raw ? top : (__u64)BPF_CORE_READ((struct super_block *)sb, s_root);
	}
	c->start_mnt = c->no_host ? 0 : c->mnt;
	c->slot = slot;
	bpf_loop(KA_MAX_DEPTH + KA_MAX_MOUNTS, collect_step, NULL, 0);
	if (!c->done || c->truncated) {
		pb->flags = KA_EV_PATH_TRUNCATED;
		count(KA_CNT_PATH_TRUNCATED);
	}
	if (c->detached)
		pb->flags |= KA_EV_DETACHED;
	if (c->no_host)
		pb->flags |= KA_EV_NO_HOST;
	pb->n = c->n;
	return pb;
}

#define KA_FMODE_NOACCOUNT 0x20000000 /* a file an overlay opens for itself: its layer's */

/* real_file returns the file an overlay file shows, the one that holds its
 * bytes (itself for any other file), or NULL if that cannot be known. An
 * overlay keeps its open layer file in private_data, since 6.13 behind a
 * struct whose first member it is: the layer file is the one marked as an
 * overlay's own (FMODE_NOACCOUNT, 6.1 and later). */
static __always_inline struct file *layer_file(struct file *f)
{
	struct file *pd = BPF_CORE_READ(f, private_data);

	if (!pd || (BPF_CORE_READ(pd, f_mode) & KA_FMODE_NOACCOUNT))
		return pd;
	bpf_probe_read_kernel(&pd, sizeof(pd), pd);
	if (!pd || !(BPF_CORE_READ(pd, f_mode) & KA_FMODE_NOACCOUNT))
		return NULL;
	return pd;
}

static __always_inline int on_overlay(struct file *f)
{
	return BPF_CORE_READ(f, f_inode, i_sb, s_magic) == KA_OVERLAYFS_MAGIC;
}

static __always_inline struct file *real_file(struct file *f)
{
	/* An overlay's layer may be an overlay: three deep, no more. Written
	 * out, not a loop: clang lays such a loop out with a fallthrough back
	 * edge, which the verifier refuses. */
	if (!f || !on_overlay(f))
		return f;
	f = layer_file(f);
	if (!f || !on_overlay(f))
		return f;
	f = layer_file(f);
	if (!f || !on_overlay(f))
		return f;
	f = layer_file(f);
	if (!f || !on_overlay(f))
		return f;
	return NULL;
}

/* file_object gives the (mount, dentry) that names f's inode: its path, or,
 * where the path is not the inode's own (a 6.1 overlay opens its layer's
 * file under the overlay's path), the inode's dentry and no mount. */
static __always_inline void file_object(struct file *f, struct vfsmount **mnt, struct dentry **dentry)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct hlist_node *alias;

	*mnt = BPF_CORE_READ(f, f_path.mnt);
	*dentry = d;
	if (!d || BPF_CORE_READ(d, d_inode) == inode)
		return;
	alias = BPF_CORE_READ(inode, i_dentry.first);
	*mnt = NULL;
	*dentry = alias ? (struct dentry *)((__u64)alias - bpf_core_field_offset(struct dentry, d_u.d_alias)) : NULL;
	/* Of several hard links, the first alias is whichever was looked up
	 * last: a name the process may have picked. Not known, then. */
	if (BPF_CORE_READ(inode, i_nlink) > 1)
		*dentry = NULL;
}

/* The walks are global functions: verified once per program, not at each
 * of the places a hook collects a path (a pointer the verifier types is
 * passed as a number: a global function takes scalars). */
__attribute__((noinline)) int ka_collect_path(__u64 vfs, __u64 dentry, __u32 slot)
{
	collect_path_here((struct vfsmount *)vfs, (struct dentry *)dentry, slot);
	return 0;
}

static __always_inline void collect_file_here(struct file *f, __u32 slot)
{
	struct file *real = real_file(f);
	struct vfsmount *mnt;
	struct dentry *dentry;
	struct path_buf *pb;

	if (real)
		file_object(real, &mnt, &dentry);
	if (!real || !dentry) {
		pb = collect_path_here(NULL, NULL, slot);
		if (pb && f)
			pb->flags |= KA_EV_PATH_TRUNCATED; /* a file whose name cannot be known */
		return;
	}
	collect_path_here(mnt, dentry, slot);
}

__attribute__((noinline)) int ka_collect_file(__u64 file, __u32 slot)
{
	collect_file_here((struct file *)file, slot);
	return 0;
}

static __always_inline struct path_buf *collect_path(struct vfsmount *vfs, struct dentry *dentry, __u32 slot)
{
	ka_collect_path(to_number(vfs), to_number(dentry), slot);
	return bpf_map_lookup_elem(&paths, &slot);
}

static __always_inline struct path_buf *collect_file(struct file *f, __u32 slot)
{
	ka_collect_file(to_number(f), slot);
	return bpf_map_lookup_elem(&paths, &slot);
}

/* component_len is the length read_component would return for component
 * k, without reading the name. */
static __always_inline __u32 component_len(struct path_buf *pb, __u32 k)
{
	struct dentry *d;
	__u32 len;

	k &= KA_MAX_DEPTH - 1;
	if (pb->mode == KA_PB_STRING)
		return pb->len[k] & (KA_NAME_LEN - 1);
	d = (struct dentry *)pb->dent[k];
	len = BPF_CORE_READ(d, d_name.len);
	return len < KA_NAME_LEN ? len : 0;
}

/* read_component copies component k (0 is the leaf) into dst, zero padded
 * to KA_NAME_LEN, and returns its length. */
static __always_inline __u32 read_component(struct path_buf *pb, __u32 k, __u8 *dst)
{
	__u32 len;

	__builtin_memset(dst, 0, KA_NAME_LEN);
	k &= KA_MAX_DEPTH - 1;
	if (pb->mode == KA_PB_STRING) {
		len = pb->len[k] & (KA_NAME_LEN - 1);
		bpf_probe_read_kernel(dst, len, &pb->buf[pb->off[k] & (KA_PATH_MAX - 1)]);
		return len;
	}
	struct dentry *d = (struct dentry *)pb->dent[k];

	len = BPF_CORE_READ(d, d_name.len);
	if (len >= KA_NAME_LEN)
		return 0;
	barrier_var(len);
	len &= KA_NAME_LEN - 1;
	bpf_probe_read_kernel(dst, len, BPF_CORE_READ(d, d_name.name));
	return len;
}

struct build_ctx {
	__u32 slot;
	__u32 k;   /* next component, counting up from the leaf */
	__u32 pos; /* the string so far starts at buf[pos] */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct build_ctx);
} build_state SEC(".maps");

static long build_step(__u32 i, void *unused)
{
	__u32 zero = 0, len;
	struct build_ctx *c = bpf_map_lookup_elem(&build_state, &zero);
	struct path_buf *pb;
	struct dentry *d;

	if (!c)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &c->slot);
	if (!pb || c->k >= pb->n)
		return 1;
	d = (struct dentry *)pb->dent[c->k & (KA_MAX_DEPTH - 1)];
	len = BPF_CORE_READ(d, d_name.len);
	if (len >= KA_NAME_LEN || len + 1 > c->pos)
		return 1;
	c->pos -= len;
	barrier_var(len);
	len &= KA_NAME_LEN - 1;
	bpf_probe_read_kernel(&pb->buf[c->pos & (KA_PATH_MAX - 1)], len, BPF_CORE_READ(d, d_name.name));
	c->pos--;
	pb->buf[c->pos & (KA_PATH_MAX - 1)] = '/';
	c->k++;
	return 0;
}

/* path_string builds the path string of paths[slot] if it is not there yet.
 * For a path cut short, it is the part that was collected, leaf side. */
static __always_inline struct path_buf *path_string(__u32 slot)
{
	__u32 zero = 0, pos;
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	struct build_ctx *c = bpf_map_lookup_elem(&build_state, &zero);

	if (!pb || !c)
		return NULL;
	if (pb->have_string)
		return pb;
	pb->buf[KA_PATH_MAX - 1] = 0;
	c->slot = slot;
	c->k = 0;
	c->pos = KA_PATH_MAX - 1;
	bpf_loop(KA_MAX_DEPTH, build_step, NULL, 0);
	pos = c->pos & (KA_PATH_MAX - 1);
	if (pb->n == 0 && pos > 0) {
		/* The root directory itself. The barrier keeps clang from
		 * dropping the mask, which older verifiers need to see. */
		pos--;
		barrier_var(pos);
		pos &= KA_PATH_MAX - 1;
		pb->buf[pos] = '/';
	} else if ((pb->flags & KA_EV_DETACHED) && pos < KA_PATH_MAX - 1) {
		pos++; /* a name, not a path: no leading '/' */
	}
	pb->start = pos;
	pb->have_string = 1;
	return pb;
}

/* copy_string copies the string path_string built in pb to dst (at least
 * KA_PATH_MAX bytes) and returns its length, without the NUL. */
static __always_inline __u32 copy_string(__u8 *dst, const struct path_buf *pb)
{
	__u32 len = path_len(pb);

	barrier_var(len);
	len &= KA_PATH_MAX - 1;
	bpf_probe_read_kernel(dst, len, &pb->buf[pb->start & (KA_PATH_MAX - 1)]);
	return len;
}

/*
 * Splitting a path string (string mode): the syscall hook builds one from a
 * user's argument, and the test program from its input. "." components are
 * dropped and ".." removes the component before it, as path lookup would
 * (without following symbolic links, which a string does not know of).
 */
struct split_ctx {
	__u32 slot;
	__u32 lo;   /* index of the leading '/' */
	__u32 i;    /* one past the next character to look at, counting down */
	__u32 end;  /* one past the last character of the current component */
	__u32 n;
	__u32 skip; /* components still to drop for ".." seen to their right */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct split_ctx);
} split_state SEC(".maps");

static long split_step(__u32 unused, void *unused_ctx)
{
	__u32 zero = 0, i, len, start;
	struct split_ctx *c = bpf_map_lookup_elem(&split_state, &zero);
	struct path_buf *pb;

	if (!c)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &c->slot);
	if (!pb || c->i <= c->lo)
		return 1;
	i = --c->i;
	if (pb->buf[i & (KA_PATH_MAX - 1)] != '/')
		return 0;
	start = i + 1;
	len = c->end > start ? c->end - start : 0;
	c->end = i;
	if (len == 0 || (len == 1 && pb->buf[start & (KA_PATH_MAX - 1)] == '.'))
		return 0;
	if (len == 2 && pb->buf[start & (KA_PATH_MAX - 1)] == '.' && pb->buf[(start + 1) & (KA_PATH_MAX - 1)] == '.') {
		c->skip++;
		return 0;
	}
	if (c->skip) {
		c->skip--;
		return 0;
	}
	if (len >= KA_NAME_LEN || c->n >= KA_MAX_DEPTH) {
		pb->flags |= KA_EV_PATH_TRUNCATED;
		return 1;
	}
	pb->off[c->n & (KA_MAX_DEPTH - 1)] = start;
	pb->len[c->n & (KA_MAX_DEPTH - 1)] = len;
	c->n++;
	return 0;
}

/* split_string lays out the string at paths[slot].buf[start..KA_PATH_MAX-1)
 * in string mode. */
static __always_inline void split_string(__u32 slot, __u32 start)
{
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	__u32 zero = 0;
	struct split_ctx *c = bpf_map_lookup_elem(&split_state, &zero);

	if (!pb || !c)
		return;
	pb->flags = 0;
	pb->mode = KA_PB_STRING;
	pb->have_string = 1;
	pb->start = start & (KA_PATH_MAX - 1);
	pb->buf[KA_PATH_MAX - 1] = 0;
	c->slot = slot;
	c->n = 0;
	c->skip = 0;
	c->lo = pb->start;
	c->i = KA_PATH_MAX - 1;
	c->end = KA_PATH_MAX - 1;
	bpf_loop(KA_PATH_MAX, split_step, NULL, 0);
	pb->n = c->n;
}

#endif /* KA_PATH_H */
