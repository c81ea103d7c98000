#!/bin/sh
# kubearmor: before removal or upgrade. deb runs it as "remove" or
# "upgrade ...", rpm as "0" (erase) or "1" (upgrade).
set -e

if [ -d /run/systemd/system ]; then
	case "$1" in
	remove | 0)
		# Stopping runs ExecStopPost (kubearmor --cleanup), which
		# unpins the programs: policies stop being enforced.
		systemctl disable --now kubearmor.service >/dev/null 2>&1 || true
		;;
	esac
fi
exit 0
