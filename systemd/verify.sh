#!/bin/sh
# verify.sh [UNIT]: check kubearmor.service with systemd-analyze verify on a
# machine where systemd need not be PID 1 and nothing is installed. Needs root:
# /usr/bin/kubearmor is stubbed on an overlay inside a private mount
# namespace, so the host is untouched. The unit is also verified in one
# transaction with the usual boot targets, which is what reveals ordering
# cycles (verify alone only checks the unit's own start job). Any output,
# warnings included (verify exits 0 on unknown keys), is a failure.
set -eu
unit=$(realpath "${1:-$(dirname "$0")/kubearmor.service}")
if [ "$(id -u)" != 0 ]; then
	echo "verify.sh: needs root for a private mount namespace" >&2
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/upper" "$tmp/work" "$tmp/units"
cp "$unit" "$tmp/units/kubearmor.service"
# With the AppArmor hosts' drop-in, as such a host runs it.
mkdir "$tmp/units/kubearmor.service.d"
cp "$(dirname "$unit")/apparmor.conf" "$tmp/units/kubearmor.service.d/"
cat >"$tmp/units/boot-check.target" <<'UNIT'
[Unit]
Description=kubearmor.service enabled, in the boot transaction
Wants=kubearmor.service sysinit.target basic.target multi-user.target apparmor.service
UNIT
out=$(unshare --mount sh -eu -c '
	mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$1/upper,workdir=$1/work" /usr/bin
	mount -t tmpfs tmpfs /run/systemd # verify stamps /run/systemd/systemd-units-load
	printf "#!/bin/sh\nexit 0\n" >/usr/bin/kubearmor
	chmod 755 /usr/bin/kubearmor
	systemd-analyze verify "$1/units/kubearmor.service" "$1/units/boot-check.target"
' sh "$tmp" 2>&1) || { echo "$out"; echo "verify.sh: systemd-analyze verify failed" >&2; exit 1; }
if [ -n "$out" ]; then
	echo "$out"
	echo "verify.sh: systemd-analyze verify reported problems" >&2
	exit 1
fi
echo "verify.sh: $unit: ok ($(systemd-analyze --version | head -1))"
