/* SPDX-License-Identifier: GPL-2.0-only */
/* Resolve a struct path to an absolute path string by walking dentries and
 * mounts up to the root of the mount tree, as the kernel's d_path does, but
 * usable from any program type (bpf_d_path is limited to a few hooks and to
 * sleepable LSM programs). The walk is a bpf_loop, so any depth up to
 * KA_MAX_DEPTH costs no verifier complexity. */
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

/* Loop state lives in a per-CPU map, not on the stack: the verifier tracks
 * stack scalars precisely across bpf_loop iterations and would explore every
 * iteration separately, while map contents are opaque to it. */
struct resolve_ctx {
	__u64 dentry;   /* struct dentry *, read only through BPF_CORE_READ */
	__u64 mnt;      /* struct mount * */
	__u64 mnt_root; /* struct dentry * */
	__u32 slot;
	__u32 pos; /* the string so far starts at buf[pos] */
	__u32 n;
	__u32 done;
	__u32 truncated;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct resolve_ctx);
} resolve_state SEC(".maps");

static long resolve_step(__u32 i, void *unused)
{
	__u32 zero = 0;
	struct resolve_ctx *c = bpf_map_lookup_elem(&resolve_state, &zero);
	struct path_buf *pb;
	struct dentry *d, *up;
	const unsigned char *name;
	__u32 len;

	if (!c)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &c->slot);
	if (!pb)
		return 1;
	d = (struct dentry *)c->dentry;
	if (c->dentry == c->mnt_root) {
		struct mount *mnt = (struct mount *)c->mnt;
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);

		if (!parent || parent == mnt) {
			c->done = 1;
			return 1;
		}
		c->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		c->mnt = (__u64)parent;
		c->mnt_root = (__u64)BPF_CORE_READ(parent, mnt.mnt_root);
		return 0;
	}
	up = BPF_CORE_READ(d, d_parent);
	if (!up || up == d) {
		/* The root of a filesystem not reached through its mount
		 * (a detached or internal mount): the path ends here. */
		c->done = 1;
		return 1;
	}
	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
	if (len == 0 || len >= KA_NAME_LEN || len + 1 > c->pos || c->n >= KA_MAX_DEPTH) {
		c->truncated = 1;
		return 1;
	}
	c->pos -= len;
	bpf_probe_read_kernel(&pb->buf[c->pos & (KA_PATH_MAX - 1)], len & (KA_NAME_LEN - 1), name);
	pb->off[c->n & (KA_MAX_DEPTH - 1)] = c->pos;
	pb->len[c->n & (KA_MAX_DEPTH - 1)] = len;
	c->n++;
	c->pos--;
	pb->buf[c->pos & (KA_PATH_MAX - 1)] = '/';
	c->dentry = (__u64)up;
	return 0;
}

/* resolve_path fills paths[slot] from p and returns it, or NULL. */
static __always_inline struct path_buf *resolve_path(const struct path *p, __u32 slot)
{
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	__u32 zero = 0;
	struct resolve_ctx *c = bpf_map_lookup_elem(&resolve_state, &zero);
	struct vfsmount *vfs;
	__u32 pos;

	if (!pb || !c)
		return NULL;
	pb->n = 0;
	pb->flags = 0;
	pb->buf[KA_PATH_MAX - 1] = 0;
	pb->start = KA_PATH_MAX - 1;
	if (!p)
		return pb;
	vfs = BPF_CORE_READ(p, mnt);
	c->dentry = (__u64)BPF_CORE_READ(p, dentry);
	c->mnt = (__u64)((void *)vfs - bpf_core_field_offset(struct mount, mnt));
	c->mnt_root = (__u64)BPF_CORE_READ(vfs, mnt_root);
	c->slot = slot;
	c->pos = KA_PATH_MAX - 1;
	c->n = 0;
	c->done = 0;
	c->truncated = 0;
	bpf_loop(KA_MAX_DEPTH + KA_MAX_MOUNTS, resolve_step, NULL, 0);
	if (!c->done || c->truncated) {
		pb->flags = KA_EV_PATH_TRUNCATED;
		count(KA_CNT_PATH_TRUNCATED);
	}
	pos = c->pos & (KA_PATH_MAX - 1);
	if (c->n == 0 && pos > 0) {
		/* The root directory itself. The barrier keeps clang from
		 * dropping the mask, which older verifiers need to see. */
		pos--;
		barrier_var(pos);
		pos &= KA_PATH_MAX - 1;
		pb->buf[pos] = '/';
	}
	pb->n = c->n;
	pb->start = pos;
	return pb;
}

#endif /* KA_PATH_H */
