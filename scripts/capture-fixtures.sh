#!/usr/bin/env bash
# Records real captures of flannel-style kernel VXLAN traffic for Weft's replay tests.
#
# Builds, in network namespaces that only this run creates (names end in the shell's pid):
#   host A ns  eth0 198.18.0.1/24 ──veth── eth0 198.18.0.2/24  host B ns
#              flannel.1 aa:bb:cc:dd:ee:01                  flannel.1 aa:bb:cc:dd:ee:02
#              10.244.1.0/32                                10.244.2.0/32
#   container A ns  eth0 10.244.1.2/24 ──veth── host A      container B ns  eth0 10.244.2.2/24 ──veth── host B
# with flannel.1 configured exactly as flannel configures it (DESIGN.md §4), then runs traffic from
# container A to container B and records, at the same time, host B's underlay (eth0, both directions,
# VXLAN only) and what host B's flannel.1 received (the inner frames the kernel decapsulated).
#
# Scenarios (each writes <scenario>-underlay.pcap and <scenario>-flannel1.pcap to OUTDIR; udp-gso also
# writes the underlay as SLL2 and SLL cooked captures and, with editcap, as pcapng):
#   offloads-off  ethtool turns off TSO/GSO/GRO/checksum offload everywhere: one datagram per frame.
#   offloads-on   defaults: TCP super-packets cross the tunnel as one VXLAN frame (tunnel TSO), and
#                 the capture shows that frame whole, outer UDP length and inner IPv4 length included.
#   udp-gso       a sender in host A sends VXLAN datagrams with UDP_SEGMENT, as Weft's engine will:
#                 the underlay shows UDP GSO super-frames (several VXLAN datagrams back to back in one
#                 UDP payload); host B's kernel splits them and flannel.1 shows each inner packet.
#   inner6        inner IPv6 over the IPv4 underlay, as Weft's engine carries it: flannel.1 also holds
#                 fc00:0:0:N::/128 with an IPv6 route and neighbour per peer (the same VtepMAC), the
#                 containers fc00:0:0:N::2/64; ping -6 (a 2000-byte one in IPv6 fragments), a short
#                 TCP stream and UDP datagrams to a closed port (ICMPv6 port unreachables come back).
#   underlay6     flannel's flannel-v6.1 device (vxlan over the IPv6 underlay 2001:db8::N/64, MTU 70
#                 below eth0's, its own VtepMAC): the same traffic, written as <scenario>-flannelv6.pcap.
#
# Offloads are off in both IPv6 scenarios. IPv6 is turned on only on the devices they use, so the
# IPv4 scenarios see no IPv6 noise.
#
# Usage: sudo scripts/capture-fixtures.sh [OUTDIR] [SCENARIO...]
#        OUTDIR defaults to Tests/CaptureTests/Fixtures; SCENARIO defaults to all five.
# Needs: root, ip, bridge, ethtool, tcpdump, iperf3, ping, python3. Touches only its own namespaces;
# all traffic stays in 198.18.0.0/24, 2001:db8::/64, 10.244.0.0/16 and fc00::/48.
set -euo pipefail

# A parent may start us with signals blocked (Foundation's Process spawns children with its
# thread's mask, which blocks SIGINT and SIGTERM): tcpdump would never see the signal that stops
# it. Start over once with an empty mask.
if [ -z "${WEFT_CAPTURE_SIGNALS_CLEARED:-}" ]; then
  export WEFT_CAPTURE_SIGNALS_CLEARED=1
  exec python3 -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
for number in (signal.SIGINT, signal.SIGTERM):
    signal.signal(number, signal.SIG_DFL)
os.execvp("bash", ["bash"] + sys.argv[1:])' "$0" "$@"
fi

here="$(cd "$(dirname "$0")" && pwd)"
outdir="${1:-$here/../Tests/CaptureTests/Fixtures}"
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(offloads-off offloads-on udp-gso inner6 underlay6)

die() { echo "capture-fixtures: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, VXLAN devices, tcpdump)"
for tool in ip bridge ethtool tcpdump iperf3 ping python3; do
  command -v "$tool" >/dev/null || die "needs $tool on PATH (scripts/setup installs it)"
done
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

suffix=$$
hostA="weft-ha-$suffix"; hostB="weft-hb-$suffix"
podA="weft-ca-$suffix";  podB="weft-cb-$suffix"
namespaces=("$hostA" "$hostB" "$podA" "$podB")
pids=()
work="$(mktemp -d)"

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  local ns
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

macA=aa:bb:cc:dd:ee:01; macB=aa:bb:cc:dd:ee:02
publicA=198.18.0.1;     publicB=198.18.0.2
mac6A=aa:bb:cc:dd:ee:11; mac6B=aa:bb:cc:dd:ee:12
public6A=2001:db8::1;    public6B=2001:db8::2

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

build_bed() {
  local ns
  for ns in "${namespaces[@]}"; do
    ip netns add "$ns"
    # No IPv6: its router solicitations and MLD reports would cross the tunnel as noise.
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    in_ns "$ns" ip link set lo up
  done
  ip -n "$hostA" link add eth0 type veth peer name eth0 netns "$hostB"
  ip -n "$hostA" addr add "$publicA/24" dev eth0
  ip -n "$hostB" addr add "$publicB/24" dev eth0
  ip -n "$hostA" link set eth0 up
  ip -n "$hostB" link set eth0 up

  # host N: flannel.1 exactly as flannel sets it up; container N behind a veth with the subnet's .1.
  local n host pod mac public
  for n in 1 2; do
    if [ $n -eq 1 ]; then host=$hostA pod=$podA mac=$macA public=$publicA
    else host=$hostB pod=$podB mac=$macB public=$publicB; fi
    in_ns "$host" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$host" link add flannel.1 address "$mac" type vxlan id 1 local "$public" dev eth0 dstport 8472 nolearning
    ip -n "$host" link set flannel.1 mtu 1450 up
    ip -n "$host" addr add "10.244.$n.0/32" dev flannel.1
    ip -n "$host" link add veth0 type veth peer name eth0 netns "$pod"
    ip -n "$host" addr add "10.244.$n.1/24" dev veth0
    ip -n "$host" link set veth0 up
    ip -n "$pod" addr add "10.244.$n.2/24" dev eth0
    ip -n "$pod" link set eth0 mtu 1450 up
    ip -n "$pod" route add default via "10.244.$n.1"
  done
  # per peer: neighbour, FDB entry, onlink route (flannel's order, so the kernel never ARPs).
  ip -n "$hostA" neigh add 10.244.2.0 lladdr "$macB" dev flannel.1 nud permanent
  ip netns exec "$hostA" bridge fdb append "$macB" dev flannel.1 dst "$publicB"
  ip -n "$hostA" route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink
  ip -n "$hostB" neigh add 10.244.1.0 lladdr "$macA" dev flannel.1 nud permanent
  ip netns exec "$hostB" bridge fdb append "$macA" dev flannel.1 dst "$publicA"
  ip -n "$hostB" route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
}

# Turns IPv6 on for one device (a name with a dot needs sysctl's slash form).
enable_ipv6() { in_ns "$1" sysctl -qw "net/ipv6/conf/$2/disable_ipv6=0"; }

ipv6_ready=
build_ipv6_bed() {  # once, before the first IPv6 scenario
  [ -z "$ipv6_ready" ] || return 0
  ipv6_ready=1
  local n host pod mac6 public6
  for n in 1 2; do
    if [ $n -eq 1 ]; then host=$hostA pod=$podA mac6=$mac6A public6=$public6A
    else host=$hostB pod=$podB mac6=$mac6B public6=$public6B; fi
    in_ns "$host" sysctl -qw net.ipv6.conf.all.forwarding=1
    enable_ipv6 "$host" eth0; enable_ipv6 "$host" veth0; enable_ipv6 "$pod" eth0
    ip -n "$host" addr add "$public6/64" dev eth0 nodad
    ip -n "$host" addr add "fc00:0:0:$n::1/64" dev veth0 nodad
    ip -n "$pod" addr add "fc00:0:0:$n::2/64" dev eth0 nodad
    ip -n "$pod" route add default via "fc00:0:0:$n::1"
    # inner6: flannel.1 carries the IPv6 subnet too, over the same IPv4 underlay.
    enable_ipv6 "$host" flannel.1
    ip -n "$host" addr add "fc00:0:0:$n::/128" dev flannel.1 nodad
    # underlay6: flannel-v6.1 as flannel sets it up (DESIGN.md), left down until its scenario.
    ip -n "$host" link add flannel-v6.1 address "$mac6" type vxlan id 1 local "$public6" dev eth0 dstport 8472 nolearning
    enable_ipv6 "$host" flannel-v6.1
    ip -n "$host" link set flannel-v6.1 mtu 1430
    ip -n "$host" addr add "fc00:0:0:$n::/128" dev flannel-v6.1 nodad
  done
  ip netns exec "$hostA" bridge fdb append "$mac6B" dev flannel-v6.1 dst "$public6B"
  ip netns exec "$hostB" bridge fdb append "$mac6A" dev flannel-v6.1 dst "$public6A"
}

# Points each host's route to the other's IPv6 subnet through `device` (flannel.1 or flannel-v6.1),
# with the neighbour entry for the peer's gateway address, and takes the other device out.
route_ipv6_via() {
  local device="$1" other=flannel-v6.1 n host peer mac
  [ "$device" = flannel.1 ] || other=flannel.1
  for n in 1 2; do
    if [ $n -eq 1 ]; then host=$hostA peer=2; else host=$hostB peer=1; fi
    if [ "$device" = flannel.1 ]; then
      if [ $n -eq 1 ]; then mac=$macB; else mac=$macA; fi
    else
      if [ $n -eq 1 ]; then mac=$mac6B; else mac=$mac6A; fi
    fi
    ip -n "$host" -6 route del "fc00:0:0:$peer::/64" 2>/dev/null || true
    ip -n "$host" -6 neigh del "fc00:0:0:$peer::" dev "$other" 2>/dev/null || true
    [ "$other" = flannel.1 ] || ip -n "$host" link set "$other" down
    ip -n "$host" link set "$device" up
    ip -n "$host" -6 neigh replace "fc00:0:0:$peer::" lladdr "$mac" dev "$device" nud permanent
    ip -n "$host" -6 route add "fc00:0:0:$peer::/64" via "fc00:0:0:$peer::" dev "$device" onlink
  done
  # Both pods' containers keep a 1450-byte MTU; flannel-v6.1's is 1430, so use that for underlay6.
  local mtu=1450
  [ "$device" = flannel.1 ] || mtu=1430
  ip -n "$podA" link set eth0 mtu $mtu
  ip -n "$podB" link set eth0 mtu $mtu
}

set_offloads() {  # on|off for every device the traffic crosses
  local state="$1" ns dev
  for ns in "$hostA" "$hostB"; do
    for dev in eth0 flannel.1 flannel-v6.1 veth0; do
      in_ns "$ns" ethtool -K "$dev" tso "$state" gso "$state" gro "$state" tx "$state" >/dev/null 2>&1 || true
    done
  done
  for ns in "$podA" "$podB"; do
    in_ns "$ns" ethtool -K eth0 tso "$state" gso "$state" gro "$state" tx "$state" >/dev/null 2>&1 || true
  done
  # veth GRO stays off either way (it is off by default): with it the receiver would merge frames
  # before tcpdump sees them.
  for ns in "$hostA" "$hostB"; do in_ns "$ns" ethtool -K eth0 gro off >/dev/null 2>&1 || true; done
}

start_capture() {  # ns dev file [filter...]
  local ns="$1" dev="$2" file="$3"; shift 3
  local log="$work/$(basename "$file").log"
  ip netns exec "$ns" tcpdump -i "$dev" -s 0 -B 32768 -U -n --immediate-mode -w "$file" "$@" 2>"$log" &
  pids+=($!)
  local tries=0
  until grep -q "listening on" "$log" 2>/dev/null; do
    tries=$((tries + 1)); [ $tries -lt 100 ] || die "tcpdump on $dev in $ns did not start: $(cat "$log")"
    sleep 0.05
  done
}

stop_captures() {
  local pid
  sleep 0.3  # let the last packets reach the capture buffers
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  # A capture that lost packets would make the comparison meaningless.
  local log
  for log in "$work"/*.log; do
    if grep -q "[1-9][0-9]* packets dropped by kernel" "$log"; then die "tcpdump lost packets: $(tr '\n' ' ' <"$log")"; fi
    rm -f "$log"
  done
}

ping_and_tcp() {
  in_ns "$podA" ping -c 4 -i 0.2 -W 2 10.244.2.2 >/dev/null || die "ping across the tunnel failed"
  # Large echo requests: fragmented by container A (1450 MTU), every fragment a tunnel packet.
  in_ns "$podA" ping -c 2 -i 0.2 -s 2000 -W 2 10.244.2.2 >/dev/null || die "large ping across the tunnel failed"
  in_ns "$podB" iperf3 -s -1 -B 10.244.2.2 >/dev/null 2>&1 &
  local server=$!
  pids+=("$server")
  sleep 0.5
  in_ns "$podA" iperf3 -c 10.244.2.2 -n 200K -l 16K >/dev/null || die "iperf3 across the tunnel failed"
  wait "$server" 2>/dev/null || true
  pids=("${pids[@]/$server}")
}

# ping_and_tcp over IPv6, then UDP datagrams to a port nobody listens on: host B's container
# answers each with an ICMPv6 port unreachable, which crosses the tunnel back.
ping_tcp_udp_ipv6() {
  local peer=fc00:0:0:2::2
  in_ns "$podA" ping -6 -c 4 -i 0.2 -W 2 "$peer" >/dev/null || die "ping -6 across the tunnel failed"
  in_ns "$podA" ping -6 -c 2 -i 0.2 -s 2000 -W 2 "$peer" >/dev/null || die "large ping -6 across the tunnel failed"
  in_ns "$podB" iperf3 -s -1 -B "$peer" >/dev/null 2>&1 &
  local server=$!
  pids+=("$server")
  sleep 0.5
  in_ns "$podA" iperf3 -c "$peer" -n 64K -l 16K >/dev/null || die "iperf3 -6 across the tunnel failed"
  wait "$server" 2>/dev/null || true
  pids=("${pids[@]/$server}")
  in_ns "$podA" python3 - "$peer" <<'PY'
import socket, sys, time
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for length in (32, 600, 1200):
    sock.sendto(bytes(range(256)) * (length // 256) + bytes(length % 256), (sys.argv[1], 9))
    time.sleep(0.1)
PY
}

# Sends, from host A's public address, VXLAN datagrams to host B's flannel.1 with UDP_SEGMENT: each
# send is several VXLAN datagrams laid back to back, every one but the last exactly gso_size bytes.
udp_gso_send() {
  in_ns "$hostA" python3 - "$publicB" "$macA" "$macB" <<'PY'
import socket, struct, sys

receiver, source_mac, destination_mac = sys.argv[1], sys.argv[2], sys.argv[3]
UDP_SEGMENT = 103  # linux/udp.h

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def inner_packet(identification, payload_length):
    source, destination = socket.inet_aton("10.244.1.2"), socket.inet_aton("10.244.2.2")
    payload = bytes((identification + i) & 0xFF for i in range(payload_length))
    udp_length = 8 + payload_length
    pseudo = source + destination + struct.pack("!BBH", 0, 17, udp_length)
    udp = struct.pack("!HHHH", 40000, 9, udp_length, 0) + payload
    udp_checksum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_checksum) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_length, identification, 0x4000, 63, 17, 0,
                         source, destination)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp

def vxlan_datagram(inner):
    ethernet = bytes.fromhex(destination_mac.replace(":", "")) + bytes.fromhex(source_mac.replace(":", "")) + b"\x08\x00"
    return struct.pack("!II", 0x08000000, 1 << 8) + ethernet + inner

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
identification = 1
for lengths in ([1000, 1000, 1000, 1000, 400], [1372, 1372, 1372], [600, 600, 80]):
    datagrams = []
    for length in lengths:
        datagrams.append(vxlan_datagram(inner_packet(identification, length)))
        identification += 1
    size = len(datagrams[0])
    sock.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, size)
    sock.sendto(b"".join(datagrams), (receiver, 8472))
PY
}

run_scenario() {
  local scenario="$1"
  case "$scenario" in
    offloads-off|udp-gso) set_offloads off ;;
    offloads-on) set_offloads on ;;
    inner6|underlay6) build_ipv6_bed; set_offloads off ;;
    *) die "unknown scenario $scenario (want offloads-off, offloads-on, udp-gso, inner6 or underlay6)" ;;
  esac
  local device=flannel.1 innerName=flannel1
  case "$scenario" in
    inner6) route_ipv6_via flannel.1 ;;
    underlay6) route_ipv6_via flannel-v6.1; device=flannel-v6.1 innerName=flannelv6 ;;
  esac
  if [ "$scenario" = udp-gso ]; then
    # The sender's veth must pass UDP GSO super-frames through whole, and the receiving veth must
    # advertise GSO: libpcap sizes its capture ring from the MTU when a device has no offloads, and
    # would cut the super-frames to 1514 bytes.
    in_ns "$hostA" ethtool -K eth0 tx on gso on tx-udp-segmentation on >/dev/null 2>&1 || true
    in_ns "$hostB" ethtool -K eth0 tx on gso on >/dev/null 2>&1 || true
  fi
  local underlay="$outdir/$scenario-underlay.pcap" inner="$outdir/$scenario-$innerName.pcap"
  start_capture "$hostB" eth0 "$underlay" udp port 8472
  start_capture "$hostB" "$device" "$inner" -Q in
  if [ "$scenario" = udp-gso ]; then
    # The same frames as Linux cooked captures (tcpdump -i any): SLL2, and SLL v1 as older tools write.
    start_capture "$hostB" any "$outdir/$scenario-underlay-sll2.pcap" udp port 8472
    start_capture "$hostB" any "$outdir/$scenario-underlay-sll.pcap" -y LINUX_SLL udp port 8472
  fi
  case "$scenario" in
    udp-gso) udp_gso_send ;;
    inner6|underlay6) ping_tcp_udp_ipv6 ;;
    *) ping_and_tcp ;;
  esac
  stop_captures
  if [ "$scenario" = udp-gso ] && command -v editcap >/dev/null; then
    editcap -F pcapng "$underlay" "$outdir/$scenario-underlay.pcapng"  # libpcap reads pcapng too
  fi
  echo "capture-fixtures: $scenario: $(tcpdump -r "$underlay" --count 2>/dev/null | cut -d" " -f1) underlay frames, $(tcpdump -r "$inner" --count 2>/dev/null | cut -d" " -f1) inner frames"
}

build_bed
for scenario in "${scenarios[@]}"; do run_scenario "$scenario"; done
