/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policy maps and the decision procedure. User space (enforcer/bpflsm)
 * compiles a policy set into these maps; the layout is documented beside the
 * Go code that writes them (enforcer/bpflsm/maps.go).
 *
 * Two generations of maps exist side by side. A new policy set is written
 * into the idle slot and made current by one 8-byte store to `active`, so a
 * hook sees either the whole old set or the whole new one, never a mix.
 *
 * Paths are matched through a trie of path components: trie[(parent, name)]
 * gives a node; rules[(node, source, type, op)] gives, for each action, the
 * most specific rule attached there. Walking the object's path from the root
 * visits directory rules from the shallowest to the deepest and the exact
 * path last, so "the last rule found for an action" is the most specific one,
 * exactly as the Go reference matcher (policy/match) ranks them.
 */
#ifndef KA_POLICY_H
#define KA_POLICY_H

#include "common.h"
#include "path.h"

#define KA_ROOT_NODE 1

struct trie_key {
	__u32 parent;
	__u32 len;
	__u8 name[KA_NAME_LEN];
};

struct trie_val {
	__u32 node;
	__u32 flags; /* enum ka_node_flag */
};

/* How a rule attached to a node relates to the object being decided. */
enum ka_key_type {
	KA_KEY_ANCESTOR = 1, /* node is an ancestor directory, not the parent */
	KA_KEY_PARENT = 2,   /* node is the object's parent directory */
	KA_KEY_SELF = 3,     /* node is the object, as a directory */
	KA_KEY_EXACT = 4,    /* node is the object, as an exact path */
};

enum ka_node_flag {
	KA_NF_ANY_SHIFT = 0,        /* bit type-1: rules without fromSource */
	KA_NF_SRC_SHIFT = 4,        /* bit 4+type-1: rules with fromSource */
	KA_NF_SOURCE = 1 << 8,      /* the node is a fromSource executable */
	KA_NF_ALLOWLIST_SHIFT = 8,  /* bit 8+kind: the source has an allow-list for kind */
};

#define KA_NF_ANY(t) (1u << (KA_NF_ANY_SHIFT + (t) - 1))
#define KA_NF_SRC(t) (1u << (KA_NF_SRC_SHIFT + (t) - 1))
#define KA_NF_ALLOWLIST(k) (1u << (KA_NF_ALLOWLIST_SHIFT + (k)))

struct rule_key {
	__u32 node;
	__u32 source; /* node of the fromSource executable, 0 for any */
	__u8 type;    /* enum ka_key_type */
	__u8 op;      /* enum ka_op */
	__u16 pad;
};

/* Best rule per action (Allow, Audit, Block) and per owner relation
 * (0: the subject owns the object, 1: it does not), for ownerOnly. */
struct rule_val {
	__u32 rule[3][2];
};

struct kind_cfg {
	__u8 has_rules;
	__u8 has_block;
	__u8 host_allowlist; /* an Allow rule without fromSource exists */
	__u8 posture;        /* KA_POSTURE_AUDIT or KA_POSTURE_BLOCK */
};

/* (set version << 1) | slot; 0 while no policy set is loaded. */
struct active_gen {
	__u64 gen;
};

/* Inner map templates. Sizes, not __type: clang leaves struct types reached
 * only through these nested pointers as forward declarations in BTF. User
 * space creates the real inner maps, sized to the policy set. */
struct trie_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct trie_key));
	__uint(value_size, sizeof(struct trie_val));
};

struct rules_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct rule_key));
	__uint(value_size, sizeof(struct rule_val));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct trie_map);
} trie_outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct rules_map);
} rules_outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * KA_KIND_SLOTS);
	__type(key, __u32);
	__type(value, struct kind_cfg);
} kinds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct active_gen);
} active SEC(".maps");

/* One trie key per CPU: it is too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trie_key);
} keybuf SEC(".maps");

struct decision {
	__u64 gen;
	__u32 rule;
	__u8 verdict;
};

/* Walk state; in a per-CPU map for the reason given in path.h. */
struct walk_ctx {
	__u32 slot;
	__u32 which;  /* KA_PATH_OBJECT or KA_PATH_EXE */
	__u32 idx;    /* components left to walk; the next is idx-1 */
	__u32 node;
	__u32 flags;  /* of node */
	__u32 terminal;
	__u32 tflags;
	__u32 source;
	__u32 best[3];
	__u8 op;
	__u8 not_owner;
	__u8 apply;   /* 0 while walking the executable's path */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_ctx);
} walk_state SEC(".maps");

static __always_inline void apply_rules(struct walk_ctx *w, __u32 node, __u32 flags, __u8 type)
{
	void *rules = bpf_map_lookup_elem(&rules_outer, &w->slot);
	struct rule_key k = {.node = node, .type = type, .op = w->op};
	struct rule_val *v;

	if (!rules)
		return;
	if (flags & KA_NF_ANY(type)) {
		v = bpf_map_lookup_elem(rules, &k);
		if (v) {
			for (int a = 0; a < 3; a++)
				if (v->rule[a][w->not_owner & 1])
					w->best[a] = v->rule[a][w->not_owner & 1];
		}
	}
	if (w->source && (flags & KA_NF_SRC(type))) {
		k.source = w->source;
		v = bpf_map_lookup_elem(rules, &k);
		if (v) {
			for (int a = 0; a < 3; a++)
				if (v->rule[a][w->not_owner & 1])
					w->best[a] = v->rule[a][w->not_owner & 1];
		}
	}
}

static long walk_step(__u32 i, void *unused)
{
	__u32 zero = 0, k, off, len;
	struct walk_ctx *w = bpf_map_lookup_elem(&walk_state, &zero);
	struct path_buf *pb;
	struct trie_key *key;
	struct trie_val *v;
	void *trie;

	if (!w || w->idx == 0)
		return 1;
	k = w->idx - 1;
	pb = bpf_map_lookup_elem(&paths, &w->which);
	key = bpf_map_lookup_elem(&keybuf, &zero);
	trie = bpf_map_lookup_elem(&trie_outer, &w->slot);
	if (!pb || !key || !trie)
		return 1;
	if (w->apply)
		apply_rules(w, w->node, w->flags, k == 0 ? KA_KEY_PARENT : KA_KEY_ANCESTOR);
	off = pb->off[k & (KA_MAX_DEPTH - 1)];
	len = pb->len[k & (KA_MAX_DEPTH - 1)];
	key->parent = w->node;
	key->len = len;
	__builtin_memset(key->name, 0, sizeof(key->name));
	bpf_probe_read_kernel(key->name, len & (KA_NAME_LEN - 1), &pb->buf[off & (KA_PATH_MAX - 1)]);
	v = bpf_map_lookup_elem(trie, key);
	if (!v)
		return 1;
	w->node = v->node;
	w->flags = v->flags;
	if (k == 0) {
		w->terminal = v->node;
		w->tflags = v->flags;
	}
	w->idx = k;
	return 0;
}

/* root_flags returns the flags of the root node, "/". */
static __always_inline __u32 root_flags(__u32 slot)
{
	__u32 zero = 0;
	struct trie_key *key = bpf_map_lookup_elem(&keybuf, &zero);
	void *trie = bpf_map_lookup_elem(&trie_outer, &slot);
	struct trie_val *v;

	if (!key || !trie)
		return 0;
	key->parent = 0;
	key->len = 0;
	__builtin_memset(key->name, 0, sizeof(key->name));
	v = bpf_map_lookup_elem(trie, key);
	return v ? v->flags : 0;
}

/*
 * decide decides op (of kind) on the object in paths[KA_PATH_OBJECT] by the
 * process whose executable is in paths[KA_PATH_EXE]. It mirrors
 * match.(*Matcher).Decide for the path-based kinds.
 */
static __always_inline void decide(__u8 kind, __u8 op, __u8 not_owner, __u32 extra_flags, struct decision *d)
{
	__u32 zero = 0, idx;
	struct active_gen *ag = bpf_map_lookup_elem(&active, &zero);
	struct path_buf *obj, *exe;
	struct walk_ctx *w = bpf_map_lookup_elem(&walk_state, &zero);
	struct kind_cfg *cfg;
	__u32 exe_flags = 0;
	__u64 gen;

	d->verdict = KA_NOMATCH;
	d->rule = 0;
	d->gen = 0;
	if (!ag || !w)
		return;
	__builtin_memset(w, 0, sizeof(*w));
	gen = *(volatile __u64 *)&ag->gen;
	if (!gen)
		return;
	d->gen = gen;
	w->slot = gen & 1;
	idx = w->slot * KA_KIND_SLOTS + kind;
	cfg = bpf_map_lookup_elem(&kinds, &idx);
	if (!cfg || !cfg->has_rules)
		return;
	count(KA_CNT_DECISIONS);

	/* The executable: find its node, if it is a fromSource. */
	exe = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_EXE});
	if (exe && exe->n && !(exe->flags & KA_EV_PATH_TRUNCATED)) {
		w->which = KA_PATH_EXE;
		w->idx = exe->n;
		w->node = KA_ROOT_NODE;
		bpf_loop(KA_MAX_DEPTH, walk_step, NULL, 0);
		if (w->idx == 0 && (w->tflags & KA_NF_SOURCE)) {
			w->source = w->terminal;
			exe_flags = w->tflags;
		}
	}
	w->terminal = 0;
	w->tflags = 0;

	obj = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_OBJECT});
	if (!obj)
		return;
	if ((obj->flags | extra_flags) & (KA_EV_PATH_TRUNCATED | KA_EV_SCRATCH_BUSY)) {
		/* No rule can be checked: fail closed where the kind blocks. */
		if (cfg->has_block || ((cfg->host_allowlist || (exe_flags & KA_NF_ALLOWLIST(kind))) &&
				       cfg->posture == KA_POSTURE_BLOCK))
			d->verdict = KA_POSTURE_BLOCK;
		else
			d->verdict = KA_POSTURE_AUDIT;
		return;
	}

	w->which = KA_PATH_OBJECT;
	w->idx = obj->n;
	w->node = KA_ROOT_NODE;
	w->flags = root_flags(w->slot);
	w->op = op;
	w->not_owner = not_owner;
	w->apply = 1;
	if (obj->n == 0) {
		w->terminal = KA_ROOT_NODE;
		w->tflags = w->flags;
	} else {
		bpf_loop(KA_MAX_DEPTH, walk_step, NULL, 0);
	}
	if (w->terminal) {
		apply_rules(w, w->terminal, w->tflags, KA_KEY_SELF);
		apply_rules(w, w->terminal, w->tflags, KA_KEY_EXACT);
	}

	if (w->best[KA_BLOCK - 1]) {
		d->verdict = KA_BLOCK;
		d->rule = w->best[KA_BLOCK - 1];
	} else if (w->best[KA_AUDIT - 1]) {
		d->verdict = KA_AUDIT;
		d->rule = w->best[KA_AUDIT - 1];
	} else if (w->best[KA_ALLOW - 1]) {
		d->verdict = KA_ALLOW;
		d->rule = w->best[KA_ALLOW - 1];
	} else if (cfg->host_allowlist || (exe_flags & KA_NF_ALLOWLIST(kind))) {
		d->verdict = cfg->posture == KA_POSTURE_BLOCK ? KA_POSTURE_BLOCK : KA_POSTURE_AUDIT;
	}
}

#endif /* KA_POLICY_H */
