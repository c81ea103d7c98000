#!/bin/sh
# kubearmor: after install or upgrade. deb runs it as "configure [old
# version]", rpm as "1" (install) or "2" (upgrade).
set -e

# Only where systemd is running: in a chroot, an image build or a container
# without systemd, installing the files is all there is to do.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$1" = 1 ] || { [ "$1" = configure ] && [ -z "$2" ]; }; then
		# A first install: enforce from now and from every boot.
		systemctl enable kubearmor.service >/dev/null 2>&1 || true
		systemctl start kubearmor.service || true
	else
		# An upgrade: the new daemon takes over the pinned programs.
		systemctl try-restart kubearmor.service || true
	fi
fi
exit 0
