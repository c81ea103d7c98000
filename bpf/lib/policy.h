/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policy maps and the decision procedure. User space (enforcer/bpflsm)
 * compiles a policy set into these maps; the layout is documented beside the
 * Go code that writes them (enforcer/bpflsm/compile.go).
 *
 * Two generations of maps exist side by side. A new policy set is written
 * into the idle slot and made current by one 8-byte store to `active`, so a
 * hook sees either the whole old set or the whole new one, never a mix.
 *
 * Paths are matched through a trie of path components: trie[(parent, name)]
 * gives a node; rules[(node, source, type, access)] gives, for each action,
 * the most specific rule attached there. Walking the object's path from the
 * root visits directory rules from the shallowest to the deepest, then the
 * object's own, so "the last rule found for an action" is the most specific
 * one, exactly as the Go reference matcher (policy/match) ranks them.
 * Protocols and capabilities are pseudo-nodes with rules of type EXACT.
 */
#ifndef KA_POLICY_H
#define KA_POLICY_H

#include "common.h"
#include "path.h"

#define KA_ROOT_NODE 1
#define KA_EXECNAME_PARENT 0xffffffffu /* trie parent of execname entries */
#define KA_PSEUDO_PROTO 0x80000000u    /* | protocol: node of a matchProtocols value */
#define KA_PSEUDO_CAP 0x81000000u      /* | capability: node of a matchCapabilities value */
#define KA_PSEUDO_DFA 0x82000000u      /* | state: node of an accepting pattern automaton state */
#define KA_PSEUDO_SYSCALL 0x83000000u  /* node of syscall rules without a path */

struct trie_key {
	__u32 parent;
	__u32 len;
	__u8 name[KA_NAME_LEN];
};

struct trie_val {
	__u32 node;
	__u32 flags; /* enum ka_node_flag */
	__u64 lens;  /* the lengths of node's children's names; see len_bit */
};

/* len_bit is the bit of a name of len bytes in trie_val.lens: a lookup of a
 * name whose bit is clear cannot succeed, and costs neither reading the name
 * nor hashing a KA_NAME_LEN key. Most files a hook sees are in directories
 * the rules name but are not themselves named; this rules most of them out. */
static __always_inline __u64 len_bit(__u32 len)
{
	return 1ULL << (len < 63 ? len : 63);
}

/* How a rule attached to a node relates to the object being decided, in
 * the order they are applied: least specific first. */
enum ka_key_type {
	KA_KEY_ANCESTOR = 1, /* node is an ancestor directory, not the parent */
	KA_KEY_PARENT = 2,   /* node is the object's parent directory */
	KA_KEY_SELF = 3,     /* node is the object, as a directory */
	KA_KEY_NAME = 4,     /* node is the object's file name (execname) */
	KA_KEY_EXACT = 5,    /* node is the object; protocol and capability nodes */
	KA_KEY_PATTERN = 6,  /* node is a pattern automaton state; applied first */
};

enum ka_node_flag {
	KA_NF_ANY_SHIFT = 0,         /* bit type-1: rules without fromSource */
	KA_NF_SRC_SHIFT = 8,         /* bit 8+type-1: rules with fromSource */
	KA_NF_SOURCE = 1 << 16,      /* a fromSource path or directory is this node: an anchor */
	KA_NF_ALLOWLIST_SHIFT = 16,  /* on a source class, bit 16+kind: it has an allow-list for kind */
};

#define KA_NF_ANY(t) (1u << (KA_NF_ANY_SHIFT + (t) - 1))
#define KA_NF_SRC(t) (1u << (KA_NF_SRC_SHIFT + (t) - 1))
#define KA_NF_ALLOWLIST(k) (1u << (KA_NF_ALLOWLIST_SHIFT + (k)))

struct rule_key {
	__u32 node;
	__u32 source; /* the caller's fromSource class (walk_source), 0 for any */
	__u8 type;    /* enum ka_key_type */
	__u8 access;  /* enum ka_access */
	__u16 sysnr;  /* the system call, for access KA_ACC_SYSCALL; else 0 */
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
	__u8 has_names;      /* execname rules exist */
	__u8 src_allowlist;  /* an Allow rule with fromSource exists */
	__u8 has_sourced;    /* a rule with fromSource exists */
	__u8 pad;
	__u32 dfa_start;     /* start state of the kind's pattern automaton; 0: no patterns */
	__u64 name_lens;     /* the lengths of the execnames (see len_bit) */
	/* Presets (process kind): the rule that decides, and its action
	 * (enum ka_verdict: KA_AUDIT or KA_BLOCK); 0: none. */
	__u32 fileless_rule;
	__u32 anon_rule;
	__u8 fileless_action;
	__u8 anon_action;
	__u8 pad2[6];
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

/* The pattern automaton of a generation: next state = dfa[state * 256 +
 * byte]; state 0 is dead. */
struct dfa_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(map_flags, BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct dfa_map);
} dfa_outer SEC(".maps");

struct dfa_ctx {
	__u32 slot;
	__u32 pos;
	__u32 end;
	__u32 state;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dfa_ctx);
} dfa_state SEC(".maps");

static long dfa_step(__u32 i, void *unused)
{
	__u32 zero = 0, key, slot_obj = KA_PATH_OBJECT;
	struct dfa_ctx *c = bpf_map_lookup_elem(&dfa_state, &zero);
	struct path_buf *pb;
	void *table;
	__u32 *next;

	if (!c || c->pos >= c->end || !c->state)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &slot_obj);
	table = bpf_map_lookup_elem(&dfa_outer, &c->slot);
	if (!pb || !table)
		return 1;
	key = c->state * 256 + pb->buf[c->pos & (KA_PATH_MAX - 1)];
	next = bpf_map_lookup_elem(table, &key);
	c->state = next ? *next : 0;
	c->pos++;
	return 0;
}

/* run_dfa feeds the object's path string through the automaton from start
 * and returns the state it ends in (0: no pattern matches). */
static __always_inline __u32 run_dfa(__u32 slot, __u32 start)
{
	__u32 zero = 0;
	struct path_buf *pb = path_string(KA_PATH_OBJECT);
	struct dfa_ctx *c = bpf_map_lookup_elem(&dfa_state, &zero);

	if (!pb || !c)
		return 0;
	c->slot = slot;
	c->pos = pb->start & (KA_PATH_MAX - 1);
	c->end = KA_PATH_MAX - 1;
	c->state = start;
	bpf_loop(KA_PATH_MAX, dfa_step, NULL, 0);
	return c->state;
}

/* Which system calls have rules, and where their path argument is. */
struct sys_filter {
	__u8 flags;    /* 1: rules without a path; 2: rules on a path */
	__s8 path_arg; /* argument holding the path, -1 for none */
	__s8 dirfd_arg; /* argument holding the directory fd a relative path is from, -1: the cwd */
	__u8 pad;
};

struct sysfilter_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct sys_filter));
	__uint(map_flags, BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct sysfilter_map);
} sysfilter_outer SEC(".maps");

/*
 * The directory cache: for a directory, the trie node of its path (0: no
 * rule path goes through it) under a generation, so that an operation on a
 * file finds its parent's node in one lookup instead of walking the path
 * from the root. Most files sit in directories no rule names, and this is
 * how they are ruled out cheaply.
 *
 * It lives in the directory inode's own storage: found without hashing,
 * and freed with the inode, so it holds at most one entry per directory
 * the kernel keeps cached. An entry is trusted only while nothing could
 * have changed the directory's path: the same generation, the same
 * namespace epoch (bumped by every directory rename, rmdir, mount, unmount,
 * mount move and pivot_root), and the same mount, dentry, parent and name
 * as when it was made (a directory reached through another mount is
 * walked, and its entry replaced). It is not used where rules above the
 * directory apply to everything below it (recursive directories) or where
 * patterns need the whole path.
 *
 * Entries are never written in place: a new one replaces the old (delete,
 * then create with its value), and a reader that still holds the old one
 * reads it whole, since the kernel frees storage only after the readers'
 * RCU grace period. So a reader needs no copy and no checksum.
 */
struct dcache_val {
	__u64 gen;
	__u64 epoch;
	__u64 mnt;      /* the canonical mount's struct vfsmount * (vfs_of) */
	__u64 dentry;
	__u64 parent;   /* the directory's own d_parent */
	__u64 hash_len; /* its d_name.hash_len */
	__u64 lens;     /* its node's children's name lengths (trie_val.lens) */
	/* What the fast path needs, worked out when the entry is made: the
	 * len_bit of every name length on which some rule may decide below
	 * the directory, whoever asks (all bits: any name); the longest name
	 * that still fits below it in KA_PATH_MAX; and whether fromSource
	 * rules make the subject's identity matter. */
	__u64 named;
	__u32 max_name;
	__u32 node;
	__u32 flags;
	__u32 sourced;
};

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dcache_val);
} dcache SEC(".maps");

/* An entry is built here, not on the stack: the stack is shared by the
 * nested calls of a walk (512 bytes in all). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dcache_val);
} dcache_scratch SEC(".maps");


/*
 * The file cache: for a file inode, the kinds for which no rule can decide
 * on it, as reached through mnt and dentry, under a generation and the
 * names epoch; an open or exec of it then costs one storage lookup and
 * none of the dentry reads the directory cache needs. An entry is made
 * when the directory cache found the file's name unnamed, and trusted
 * while the generation, the names epoch, the mount and the dentry are
 * those it was made with: a dentry can name another path of the same inode
 * only after a rename or a link, which move the names epoch. Entries are
 * replaced, never written in place (see dcache).
 */
struct fcache_val {
	__u64 gen;
	__u64 epoch; /* KA_EPOCH_NAMES */
	__u64 mnt;
	__u64 dentry;
	__u32 kinds;   /* bit 1 << kind: no rule of the kind can decide */
	__u32 sourced; /* bit 1 << kind: fromSource rules of it exist, so the subject must be known */
};

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fcache_val);
} fcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fcache_val);
} fcache_scratch SEC(".maps");

/* cached_file returns the file cache's entry for inode if it says no rule
 * of kind can decide on it as (mnt, dentry) under gen and names epoch nep. */
static __always_inline const struct fcache_val *cached_file(struct inode *inode, __u64 mnt, __u64 dentry, __u64 gen,
							    __u64 nep, __u8 kind)
{
	struct fcache_val *v = bpf_inode_storage_get(&fcache, inode, 0, 0);
	struct vfsmount *m = (struct vfsmount *)mnt;

	if (!v || v->gen != gen || v->epoch != nep || v->dentry != dentry || !(v->kinds & (1U << kind)))
		return NULL;
	if (v->mnt != mnt && (!mnt || v->mnt != vfs_of(canon_peek((__u64)BPF_CORE_READ(m, mnt_sb),
								     (__u64)BPF_CORE_READ(m, mnt_root),
								     read_epoch(KA_EPOCH_NAMESPACE)))))
		return NULL;
	return v;
}

/* Decisions per rule of a generation, indexed by rule ID (0: the default
 * posture). Shared, not per CPU, so memory does not grow with CPUs times
 * rules; the adds are atomic. */
struct rule_stats {
	__u64 allowed;
	__u64 audited;
	__u64 denied;
};

struct stats_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct rule_stats));
	__uint(map_flags, BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct stats_map);
} stats_outer SEC(".maps");

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

/* stamps[slot] is the generation whose maps the slot holds: user space sets
 * it to 0 before rewriting a slot and to the new generation after. A
 * decision that finds its slot's stamp changed read a slot being rewritten
 * (possible only if it was preempted across two updates) and does not
 * trust what it found. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stamps SEC(".maps");

/* One trie key per CPU: it is too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trie_key);
} keybuf SEC(".maps");

/* What a process is as a fromSource subject, per generation. Found once per
 * task by walking its executable's path through the trie, and forgotten
 * when it execs or the generation changes, so hot hooks like capable do not
 * walk a path each time. */
struct task_src {
	__u64 gen;
	__u64 exe;    /* struct file * of the executable it was found for */
	__u32 source; /* node of its executable if that is a fromSource, else 0 */
	__u32 flags;  /* that node's flags (allow-lists) */
	__u32 unknown; /* its executable's path could not be resolved */
	/* Where the task is in running a program (see lsm.bpf.c: loaders). */
	__u8 phase;  /* enum ka_phase */
	__u8 loader; /* its program is a dynamic loader */
	__u8 interp; /* the kernel mapped an interpreter for its program */
	__u8 ident;  /* enum ka_ident */
	__u8 trusted; /* its program is a file only root can have made (trusted_inode) */
	__u8 pad[7];
};

enum ka_phase {
	KA_PHASE_RUNNING = 0, /* not in an exec */
	KA_PHASE_LOADING = 1, /* past the exec's point of no return: the kernel maps the program */
};

enum ka_ident {
	KA_IDENT_EXE = 0,     /* it is its executable */
	KA_IDENT_PENDING = 1, /* a loader runs: the first other file it maps executable is the program */
	KA_IDENT_LOADED = 2,  /* it is the program a loader mapped (task_idents) */
};

/* The program a loader runs, for a process that is it (KA_IDENT_LOADED):
 * its host path, which stands for the executable in fromSource and alerts. */
struct task_ident {
	__u32 len;
	__u32 flags; /* the path's KA_EV_* flags */
	__u8 path[KA_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ident);
} task_idents SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_src);
} task_srcs SEC(".maps");

struct decision {
	__u64 gen;
	__u32 rule;
	__u8 verdict;
	__u8 flags; /* KA_EV_TORN */
	__u8 pad[2];
};

/* A decision in progress. In a per-CPU map for the reason given in path.h. */
struct walk_ctx {
	__u32 slot;
	__u32 which;    /* path slot being walked */
	__u32 idx;      /* components left to walk; the next is idx-1 */
	__u32 node;
	__u32 flags;    /* of node */
	__u32 terminal; /* node of the whole path, if the walk got there */
	__u32 tflags;
	__u32 source;
	__u32 best[3];  /* per action */
	__u32 rank[3];  /* for merges by rank (protocols) */
	__u8 access;
	__u8 not_owner;
	__u8 apply;     /* 0 while walking the executable's path */
	__u8 deep;      /* a directory above the object's parent has ANCESTOR rules */
	__u16 sysnr;
	__u16 pad2;
	__u32 pnode;    /* node of the object's parent directory, 0 if none */
	__u32 pflags;
	__u64 lens;     /* of node */
	__u64 plens;    /* of pnode */
	__u32 anchor;   /* the deepest fromSource anchor on the executable's path */
	__u32 anchor_rest; /* components of that path below the anchor */
	__u32 no_posture; /* an executable mapping: no allow-list posture */
	__u32 pad3;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_ctx);
} walk_state SEC(".maps");

static __always_inline struct walk_ctx *walk_ctx(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&walk_state, &zero);
}

/* lookup_rules returns the rules for key in the current generation. */
static __always_inline struct rule_val *lookup_rules(struct walk_ctx *w, struct rule_key *k)
{
	void *rules = bpf_map_lookup_elem(&rules_outer, &w->slot);

	return rules ? bpf_map_lookup_elem(rules, k) : NULL;
}

static __always_inline void take(struct walk_ctx *w, struct rule_val *v)
{
	for (int a = 0; a < 3; a++)
		if (v->rule[a][w->not_owner & 1])
			w->best[a] = v->rule[a][w->not_owner & 1];
}

/* apply_rules merges the rules of (node, type): those for any source, then
 * the more specific ones for this source. */
static __always_inline void apply_rules(struct walk_ctx *w, __u32 node, __u32 flags, __u8 type)
{
	struct rule_key k = {.node = node, .type = type, .access = w->access, .sysnr = w->sysnr};
	struct rule_val *v;

	if (flags & KA_NF_ANY(type)) {
		v = lookup_rules(w, &k);
		if (v)
			take(w, v);
	}
	if (w->source && (flags & KA_NF_SRC(type))) {
		k.source = w->source;
		v = lookup_rules(w, &k);
		if (v)
			take(w, v);
	}
}

/* trie_child looks up component k of paths[w->which] under parent, whose
 * children's name lengths are lens. */
static __always_inline struct trie_val *trie_child(struct walk_ctx *w, __u32 parent, __u64 lens, __u32 k)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &w->which);
	struct trie_key *key;
	void *trie;

	if (!pb || !(lens & len_bit(component_len(pb, k))))
		return NULL;
	key = bpf_map_lookup_elem(&keybuf, &zero);
	trie = bpf_map_lookup_elem(&trie_outer, &w->slot);
	if (!key || !trie)
		return NULL;
	key->parent = parent;
	key->len = read_component(pb, k, key->name);
	return bpf_map_lookup_elem(trie, key);
}

static long walk_step(__u32 i, void *unused)
{
	struct walk_ctx *w = walk_ctx();
	struct trie_val *v;
	__u32 k;

	if (!w || w->idx == 0)
		return 1;
	k = w->idx - 1;
	if (w->apply) {
		apply_rules(w, w->node, w->flags, k == 0 ? KA_KEY_PARENT : KA_KEY_ANCESTOR);
		if (k == 0) {
			w->pnode = w->node;
			w->pflags = w->flags;
			w->plens = w->lens;
		} else if (w->flags & (KA_NF_ANY(KA_KEY_ANCESTOR) | KA_NF_SRC(KA_KEY_ANCESTOR))) {
			w->deep = 1;
		}
	}
	v = trie_child(w, w->node, w->lens, k);
	if (!v)
		return 1;
	w->node = v->node;
	w->flags = v->flags;
	w->lens = v->lens;
	if (!w->apply && (v->flags & KA_NF_SOURCE)) {
		w->anchor = v->node;
		w->anchor_rest = k;
	}
	if (k == 0) {
		w->terminal = v->node;
		w->tflags = v->flags;
	}
	w->idx = k;
	return 0;
}

/* trie_marker looks up an entry that no file name spells: (parent, len
 * bytes of zeros but for name[1] = tag). The root is (0, 0, ""), source
 * classes (anchor, 2, "\0" tag). */
static __always_inline struct trie_val *trie_marker(struct walk_ctx *w, __u32 parent, __u32 len, __u8 tag)
{
	__u32 zero = 0;
	struct trie_key *key = bpf_map_lookup_elem(&keybuf, &zero);
	void *trie = bpf_map_lookup_elem(&trie_outer, &w->slot);

	if (!key || !trie)
		return NULL;
	__builtin_memset(key->name, 0, sizeof(key->name));
	key->parent = parent;
	key->len = len;
	key->name[1] = tag;
	return bpf_map_lookup_elem(trie, key);
}

/* enter_root starts a walk at "/": its node, flags and children's name
 * lengths. */
static __always_inline void enter_root(struct walk_ctx *w)
{
	struct trie_val *v = trie_marker(w, 0, 0, 0);

	w->node = KA_ROOT_NODE;
	w->flags = v ? v->flags : 0;
	w->lens = v ? v->lens : 0;
}

/* begin reads the current generation and the settings of kind; NULL when
 * no rule of kind is in force, which is most calls of most hooks. */
static __always_inline struct kind_cfg *begin(__u8 kind, struct decision *d)
{
	__u32 zero = 0, idx;
	struct active_gen *ag = bpf_map_lookup_elem(&active, &zero);
	struct kind_cfg *cfg;

	d->verdict = KA_NOMATCH;
	d->rule = 0;
	d->gen = 0;
	d->flags = 0;
	if (!ag)
		return NULL;
	d->gen = *(volatile __u64 *)&ag->gen;
	if (!d->gen)
		return NULL;
	idx = (d->gen & 1) * KA_KIND_SLOTS + kind;
	cfg = bpf_map_lookup_elem(&kinds, &idx);
	if (!cfg || !cfg->has_rules)
		return NULL;
	return cfg;
}

/* walk_source finds the source class of the executable in
 * paths[KA_PATH_EXE]: the class its deepest anchor has for it (it is the
 * anchor, directly in it, or deeper below), which stands for every
 * fromSource entry it matches; none if no class is there. */
static __always_inline void walk_source(struct walk_ctx *w, struct task_src *out)
{
	struct path_buf *exe = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_EXE});
	struct trie_val *class;

	out->source = 0;
	out->flags = 0;
	out->unknown = 0;
	if (!exe)
		return;
	if (exe->flags & KA_EV_PATH_TRUNCATED) {
		out->unknown = 1;
		return;
	}
	/* A name no host mount shows is no fromSource: a user could mount
	 * anything at a source's path in a namespace of their own. */
	if (!exe->n || (exe->flags & (KA_EV_DETACHED | KA_EV_NO_HOST)))
		return;
	w->which = KA_PATH_EXE;
	w->idx = exe->n;
	enter_root(w);
	w->terminal = 0;
	w->apply = 0;
	if (w->flags & KA_NF_SOURCE) {
		w->anchor = KA_ROOT_NODE;
		w->anchor_rest = exe->n;
	}
	bpf_loop(KA_MAX_DEPTH, walk_step, NULL, 0);
	if (!w->anchor)
		return;
	class = trie_marker(w, w->anchor, 2, w->anchor_rest == 0 ? 's' : w->anchor_rest == 1 ? 'p' : 'a');
	if (class) {
		out->source = class->node;
		out->flags = class->flags;
	}
}

/* start_walk resets the walk state for a decision under gen. */
static __always_inline struct walk_ctx *start_walk(__u64 gen, __u8 access, __u8 not_owner)
{
	struct walk_ctx *w = walk_ctx();

	if (!w)
		return NULL;
	__builtin_memset(w, 0, sizeof(*w));
	w->slot = gen & 1;
	w->access = access;
	w->not_owner = not_owner;
	return w;
}

/* tally counts a decision against the rule that made it. */
static __always_inline void tally(const struct decision *d)
{
	__u32 slot = d->gen & 1, id = d->rule;
	void *stats;
	struct rule_stats *st;

	if (d->verdict == KA_NOMATCH)
		return;
	stats = bpf_map_lookup_elem(&stats_outer, &slot);
	if (!stats)
		return;
	st = bpf_map_lookup_elem(stats, &id);
	if (!st)
		return;
	if (d->verdict == KA_ALLOW)
		__sync_fetch_and_add(&st->allowed, 1);
	else if (d->verdict == KA_AUDIT || d->verdict == KA_POSTURE_AUDIT)
		__sync_fetch_and_add(&st->audited, 1);
	else
		__sync_fetch_and_add(&st->denied, 1);
}

/* unresolvable decides when the object, or which rules apply to the
 * subject, cannot be known: fail closed where the kind blocks. src is NULL
 * when the subject is unknown, and then any source's allow-list may be it. */
static __always_inline void unresolvable_as(struct kind_cfg *cfg, __u8 kind, const struct task_src *src,
					    struct decision *d, int no_posture)
{
	int listed = !no_posture &&
		     (cfg->host_allowlist || (src ? !!(src->flags & KA_NF_ALLOWLIST(kind)) : cfg->src_allowlist));

	d->rule = 0;
	if (cfg->has_block || (listed && cfg->posture == KA_POSTURE_BLOCK))
		d->verdict = KA_POSTURE_BLOCK;
	else
		d->verdict = KA_POSTURE_AUDIT;
	tally(d);
}

static __always_inline void unresolvable(struct kind_cfg *cfg, __u8 kind, const struct task_src *src,
					 struct decision *d)
{
	unresolvable_as(cfg, kind, src, d, 0);
}

/* subject_unknown reports whether fromSource rules of the kind may apply to
 * a subject whose executable could not be resolved. */
static __always_inline int subject_unknown(struct kind_cfg *cfg, const struct task_src *src)
{
	return src->unknown && cfg->has_sourced;
}

/* torn reports whether the slot the decision read was rewritten meanwhile;
 * see stamps. */
static __always_inline int torn(const struct decision *d)
{
	__u32 slot = d->gen & 1;
	__u64 *stamp;

	/* The reads of the slot the caller made must not sink below this. */
	asm volatile("" ::: "memory");
	stamp = bpf_map_lookup_elem(&stamps, &slot);

	return !stamp || *(volatile __u64 *)stamp != d->gen;
}

/* finish turns the rules found into a verdict: Block beats Audit beats
 * Allow; with none, the posture if an allow-list covers the subject. */
static __always_inline void finish(struct walk_ctx *w, struct kind_cfg *cfg, __u8 kind, __u32 src_flags,
				   struct decision *d)
{
	/* Read the settings before the stamp: once it is checked, the slot may
	 * be rewritten. */
	int listed = cfg->host_allowlist || (src_flags & KA_NF_ALLOWLIST(kind));
	__u8 posture = cfg->posture;

	if (torn(d)) {
		count(KA_CNT_TORN);
		d->flags |= KA_EV_TORN;
		unresolvable(cfg, kind, NULL, d);
		return;
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
	} else if (listed && !w->no_posture) {
		d->verdict = posture == KA_POSTURE_BLOCK ? KA_POSTURE_BLOCK : KA_POSTURE_AUDIT;
	}
	tally(d);
}

/*
 * decide_path decides op (of a path kind) on the object in
 * paths[KA_PATH_OBJECT] by a subject whose fromSource identity is src. It
 * mirrors match.(*Matcher).Decide.
 */
static __always_inline void decide_path(struct kind_cfg *cfg, __u8 kind, __u8 op, __u8 not_owner,
					const struct task_src *src, struct decision *d)
{
	struct path_buf *obj = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_OBJECT});
	struct walk_ctx *w = start_walk(d->gen, access_of(op), not_owner);
	struct trie_val *name;

	if (!obj || !w)
		return;
	count(KA_CNT_DECISIONS);
	w->no_posture = op == KA_OP_EXEC_MAP;
	if ((obj->flags & KA_EV_PATH_TRUNCATED) || subject_unknown(cfg, src)) {
		unresolvable_as(cfg, kind, src->unknown ? NULL : src, d, w->no_posture);
		return;
	}
	w->source = src->source;
	if (cfg->dfa_start && !(obj->flags & (KA_EV_DETACHED | KA_EV_NO_HOST))) {
		/* Patterns are the least specific: applied first. */
		__u32 state = run_dfa(w->slot, cfg->dfa_start);

		if (state)
			apply_rules(w, KA_PSEUDO_DFA | state, KA_NF_ANY(KA_KEY_PATTERN), KA_KEY_PATTERN);
	}
	w->which = KA_PATH_OBJECT;
	w->idx = obj->n;
	enter_root(w);
	w->apply = 1;
	if (obj->flags & (KA_EV_DETACHED | KA_EV_NO_HOST)) {
		/* A name, not a host path: only execname rules can match, and
		 * for a program, the filelessExec preset. */
		if (cfg->fileless_rule && (op == KA_OP_EXEC || op == KA_OP_EXEC_MAP))
			w->best[(cfg->fileless_action - 1) & 3] = cfg->fileless_rule;
	} else if (obj->n == 0) {
		w->terminal = KA_ROOT_NODE;
		w->tflags = w->flags;
	} else {
		bpf_loop(KA_MAX_DEPTH, walk_step, NULL, 0);
	}
	if (w->terminal)
		apply_rules(w, w->terminal, w->tflags, KA_KEY_SELF);
	if (cfg->has_names && obj->n) {
		name = trie_child(w, KA_EXECNAME_PARENT, cfg->name_lens, 0);
		if (name)
			apply_rules(w, name->node, name->flags, KA_KEY_NAME);
	}
	if (w->terminal)
		apply_rules(w, w->terminal, w->tflags, KA_KEY_EXACT);
	finish(w, cfg, kind, src->flags, d);
}

/* trie_named looks up a file name under parent, reading it straight from
 * the dentry. */
static __always_inline struct trie_val *trie_named(struct walk_ctx *w, __u32 parent, __u64 lens, struct dentry *d)
{
	__u32 zero = 0, len = BPF_CORE_READ(d, d_name.len);
	struct trie_key *key;
	void *trie;

	if (len >= KA_NAME_LEN || !(lens & len_bit(len)))
		return NULL;
	key = bpf_map_lookup_elem(&keybuf, &zero);
	trie = bpf_map_lookup_elem(&trie_outer, &w->slot);
	if (!key || !trie)
		return NULL;
	__builtin_memset(key->name, 0, sizeof(key->name));
	barrier_var(len);
	len &= KA_NAME_LEN - 1;
	bpf_probe_read_kernel(key->name, len, BPF_CORE_READ(d, d_name.name));
	key->parent = parent;
	key->len = len;
	return bpf_map_lookup_elem(trie, key);
}

/*
 * cached_parent returns the directory cache's entry for dentry's parent, if
 * there is one it can trust under gen and epoch ep (see dcache), and puts
 * the length of dentry's name in *lenp. A name that would not fit below the
 * directory is the full walk's to flag as unresolvable: NULL then too.
 */
static __always_inline const struct dcache_val *cached_parent(struct vfsmount *mnt, struct dentry *dentry,
							      struct dentry *parent, __u64 gen, __u64 ep,
							      __u32 *lenp)
{
	struct dcache_val *v = bpf_inode_storage_get(&dcache, parent->d_inode, 0, 0);
	__u32 len;

	if (!v)
		return NULL;
	if (v->gen != gen || v->epoch != ep ||
	    (v->mnt != (__u64)mnt && v->mnt != vfs_of(canon_peek((__u64)mnt->mnt_sb, (__u64)mnt->mnt_root, ep))) ||
	    v->dentry != (__u64)parent ||
	    v->parent != (__u64)parent->d_parent ||
	    /* Two loads: the verifier checks a direct read against one member
	     * of the union, and hash_len's first is the 4-byte hash. */
	    v->hash_len != (((__u64)parent->d_name.len << 32) | parent->d_name.hash))
		return NULL;
	len = dentry->d_name.len;
	if (len - 1 >= v->max_name) /* also an empty name */
		return NULL;
	*lenp = len;
	return v;
}

/*
 * unnamed reports whether no rule of the kind can decide on a name of len
 * bytes in the cached directory v, whoever the subject: no rule on the
 * directory's entries, no child or execname of that length in the trie, no
 * pattern, and no allow-list that would turn "no rule" into the posture
 * (all worked out into v->named when the entry was made, from a policy
 * generation that was not rewritten meanwhile). The subject's identity
 * matters only where it cannot be resolved; the caller checks that.
 */
static __always_inline int unnamed(const struct dcache_val *v, __u32 len)
{
	return !(v->named & len_bit(len));
}

/* fast_mask is dcache_val.named for a directory whose trie node is node
 * (0: none), with flags and children's name lengths lens. */
static __always_inline __u64 fast_mask(const struct kind_cfg *cfg, __u32 node, __u32 flags, __u64 lens)
{
	__u64 named = 0;

	if (cfg->dfa_start || cfg->host_allowlist || cfg->src_allowlist)
		return ~0ULL;
	if (node) {
		if (flags & (KA_NF_ANY(KA_KEY_PARENT) | KA_NF_SRC(KA_KEY_PARENT)))
			return ~0ULL;
		named = lens;
	}
	if (cfg->has_names)
		named |= cfg->name_lens;
	return named;
}

/*
 * decide_cached decides op on dentry from its parent directory's trusted
 * cache entry v (cached_parent), mirroring decide_path for a path whose
 * directories carry no ANCESTOR rules.
 */
static __always_inline void decide_cached(struct kind_cfg *cfg, __u8 kind, __u8 op, __u8 not_owner,
					  const struct task_src *src, const struct dcache_val *v, struct dentry *dentry,
					  struct decision *d)
{
	struct walk_ctx *w = start_walk(d->gen, access_of(op), not_owner);
	struct trie_val *child, *name;

	if (!w) {
		unresolvable(cfg, kind, NULL, d);
		return;
	}
	count(KA_CNT_DECISIONS);
	count(KA_CNT_CACHED);
	w->no_posture = op == KA_OP_EXEC_MAP;
	if (subject_unknown(cfg, src)) {
		unresolvable_as(cfg, kind, NULL, d, w->no_posture);
		return;
	}
	w->source = src->source;
	if (v->node) {
		apply_rules(w, v->node, v->flags, KA_KEY_PARENT);
		child = trie_named(w, v->node, v->lens, dentry);
		if (child) {
			w->terminal = child->node;
			w->tflags = child->flags;
		}
	}
	if (w->terminal)
		apply_rules(w, w->terminal, w->tflags, KA_KEY_SELF);
	if (cfg->has_names) {
		name = trie_named(w, KA_EXECNAME_PARENT, cfg->name_lens, dentry);
		if (name)
			apply_rules(w, name->node, name->flags, KA_KEY_NAME);
	}
	if (w->terminal)
		apply_rules(w, w->terminal, w->tflags, KA_KEY_EXACT);
	finish(w, cfg, kind, src->flags, d);
}

/* remember_parent caches what the walk just learned about the object's
 * parent directory, when the walk ran in full and nothing above the parent
 * applies to everything below it. */
static __always_inline void remember_parent(const struct kind_cfg *cfg, struct vfsmount *mnt, struct dentry *parent,
					   __u64 ep, const struct decision *d)
{
	struct path_buf *obj = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_OBJECT});
	struct walk_ctx *w = walk_ctx();
	struct collect_ctx *c = bpf_map_lookup_elem(&collect_state, &(__u32){0});
	struct inode *dir = parent->d_inode;
	struct dcache_val *vp = bpf_map_lookup_elem(&dcache_scratch, &(__u32){0});
	struct dentry *leafd;
	__u32 leaf, dlen;

	if (!vp || !obj || !w || !c || !dir || !w->apply || w->deep || !obj->n || !c->start_mnt ||
	    (obj->flags & (KA_EV_PATH_TRUNCATED | KA_EV_DETACHED | KA_EV_NO_HOST)) || obj->mode != KA_PB_DENTRY)
		return;
	/* A local first: inside BPF_CORE_READ, obj->dent would be relocated
	 * against kernel types too, and fail. */
	leafd = (struct dentry *)obj->dent[0];
	leaf = BPF_CORE_READ(leafd, d_name.len) + 1;
	dlen = c->total - leaf;
	/* Room for one more component, and for a name of a byte at least. */
	if (leaf > c->total || obj->n >= KA_MAX_DEPTH || dlen + 3 > KA_PATH_MAX)
		return;
	__builtin_memset(vp, 0, sizeof(*vp));
	/* The directory's path, '/', the name and a NUL fit in KA_PATH_MAX. */
	vp->max_name = KA_PATH_MAX - 2 - dlen;
	if (vp->max_name > KA_NAME_LEN - 1)
		vp->max_name = KA_NAME_LEN - 1;
	vp->gen = d->gen;
	vp->epoch = ep;
	/* Numbers, as the value holds them. */
	vp->mnt = vfs_of(c->start_mnt); /* canonical: the entry serves every mount that shows the directory */
	vp->dentry = to_number(parent);
	vp->parent = (__u64)BPF_CORE_READ(parent, d_parent);
	vp->hash_len = BPF_CORE_READ(parent, d_name.hash_len);
	vp->node = w->pnode;
	vp->flags = w->pflags;
	vp->lens = w->plens;
	vp->named = fast_mask(cfg, vp->node, vp->flags, vp->lens);
	vp->sourced = cfg->has_sourced;
	/* Settings read from a slot rewritten meanwhile make no entry. */
	if (torn(d))
		return;
	/* Replaced, never written in place (see dcache); if another program
	 * creates one in between, its entry stays, as good as this one. */
	bpf_inode_storage_delete(&dcache, dir);
	bpf_inode_storage_get(&dcache, dir, vp, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* decide_syscall decides system call nr: its rules without a path, then,
 * when the call names one (in paths[KA_PATH_OBJECT], string mode), those on
 * the path. Syscall rules only ever audit. */
static __always_inline void decide_syscall(struct kind_cfg *cfg, __u16 nr, int with_path,
					   const struct task_src *src, struct decision *d)
{
	struct path_buf *obj = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_OBJECT});
	struct walk_ctx *w = start_walk(d->gen, KA_ACC_SYSCALL, 0);

	if (!obj || !w)
		return;
	count(KA_CNT_DECISIONS);
	if (subject_unknown(cfg, src) || (with_path && (obj->flags & KA_EV_PATH_TRUNCATED))) {
		unresolvable(cfg, KA_KIND_SYSCALL, src->unknown ? NULL : src, d);
		return;
	}
	w->source = src->source;
	w->sysnr = nr;
	apply_rules(w, KA_PSEUDO_SYSCALL, KA_NF_ANY(KA_KEY_EXACT) | KA_NF_SRC(KA_KEY_EXACT), KA_KEY_EXACT);
	if (with_path) {
		w->which = KA_PATH_OBJECT;
		w->idx = obj->n;
		enter_root(w);
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
	}
	finish(w, cfg, KA_KIND_SYSCALL, src->flags, d);
}

/* decide_node decides on one pseudo-node (a capability). */
static __always_inline void decide_node(struct kind_cfg *cfg, __u8 kind, __u8 op, __u32 node,
					const struct task_src *src, struct decision *d)
{
	struct walk_ctx *w = start_walk(d->gen, access_of(op), 0);

	if (!w)
		return;
	count(KA_CNT_DECISIONS);
	if (subject_unknown(cfg, src)) {
		unresolvable(cfg, kind, NULL, d);
		return;
	}
	w->source = src->source;
	apply_rules(w, node, KA_NF_ANY(KA_KEY_EXACT) | KA_NF_SRC(KA_KEY_EXACT), KA_KEY_EXACT);
	finish(w, cfg, kind, src->flags, d);
}

#endif /* KA_POLICY_H */
