package monitor

//go:generate go tool bpf2go -cc clang -target bpfel -type vis_event -type ka_vis_type -type ka_vis_kind -type ka_vis_counter -type ka_event_flag visibility ../../bpf/visibility.bpf.c -- -mcpu=v3 -O2 -g -Wall -Werror -I../../bpf -I../../bpf/include -I/usr/include/x86_64-linux-gnu
