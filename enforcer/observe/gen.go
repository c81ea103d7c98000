package observe

//go:generate go tool bpf2go -cc clang -target bpfel -type mon_event -type ka_mon_type -type ka_counter -type ka_event_flag monitor ../../bpf/monitor.bpf.c -- -mcpu=v3 -O2 -g -Wall -Werror -I../../bpf -I../../bpf/include -I/usr/include/x86_64-linux-gnu
