package bpflsm

//go:generate go tool bpf2go -cc clang -target bpfel -type alert -type trie_key -type trie_val -type rule_key -type rule_val -type kind_cfg -type active_gen -type test_input -type test_output -type decision -type ka_verdict -type ka_op -type ka_kind -type ka_counter -type ka_event_flag -type ka_key_type -type ka_node_flag -type ka_access -type ka_proto -type rule_stats -type sys_filter -type ka_settings -type ka_userns lsm ../../bpf/lsm.bpf.c -- -mcpu=v3 -O2 -g -Wall -Werror -I../../bpf -I../../bpf/include -I/usr/include/x86_64-linux-gnu
