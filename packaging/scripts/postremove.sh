#!/bin/sh
# kubearmor: after removal. deb runs it as "remove", "purge", "upgrade"
# and others; rpm as "0" (erase) or "1" (upgrade).
set -e

case "$1" in
purge)
	# Purge removes the configuration and every policy file, and the
	# state; remove keeps them.
	rm -rf /etc/kubearmor /var/lib/kubearmor
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
