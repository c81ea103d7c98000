package denials

//go:generate go tool bpf2go -cc clang -target bpfel -type denial -type ka_deny_counter -type ka_event_flag denials ../../bpf/denials.bpf.c -- -mcpu=v3 -O2 -g -Wall -Werror -I../../bpf -I../../bpf/include -I/usr/include/x86_64-linux-gnu
