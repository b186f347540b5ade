# Runs inside the HIL guest (busybox sh) as its run script: serves shell commands from the
# host over the virtio-serial port named ptpvts-agent, so one boot can run several steps
# with the host acting between them (lib/guest-shell.ts is the other end).
#
# Host -> guest, one line each:  RUN ID BASE64(script)   |   QUIT
# Guest -> host, one line each:  READY                    |   OUT ID RC BASE64(stdout+stderr)
# Each script runs in its own `sh` with /hil as its working directory; state between
# steps lives in files under /tmp. EOF on the port (the host went away) ends the loop.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
port=""
for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = ptpvts-agent ] && port=/dev/$(basename "$p"); done
echo "@@HIL command-port $port"
[ -n "$port" ] || exit 1
exec 3<>"$port"
echo READY >&3
while read -r verb id body <&3; do
  case "$verb" in
    RUN)
      echo "$body" | base64 -d > /tmp/step.sh
      (cd /hil && sh /tmp/step.sh) > /tmp/step.out 2>&1
      rc=$?
      echo "@@HIL step $id rc=$rc"
      echo "OUT $id $rc $(base64 -w 0 /tmp/step.out)" >&3
      ;;
    QUIT) break ;;
    *) echo "@@HIL step-refused $verb" ;;
  esac
done
exec 3<&-
