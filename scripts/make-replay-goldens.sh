#!/usr/bin/env bash
# Remakes the encap goldens in Tests/CaptureTests/Fixtures from the committed kernel captures:
#   golden-inner.pcap       the first 24 inner packets host B's flannel.1 received in the
#                           offloads-off scenario (ping, fragments, TCP), Ethernet header cut off
#                           by editcap: what host A's TUN would hand Weft (LINKTYPE_RAW).
#   golden-encap-vxlan.pcap `weft replay encap` of it as host A (bed-routes.json)
#   golden-encap-udp.pcap   the same for the udp backend (bed-routes-udp.json)
# The goldens pin Weft's output; CaptureTests check it independently (the kernel's own VXLAN
# payloads for the same packets, reference checksums, tshark), so remake them only on purpose.
# Usage: scripts/make-replay-goldens.sh  (after `swift build`; needs editcap from tshark's package)
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=Tests/CaptureTests/Fixtures
weft="$(swift build --show-bin-path)/weft"
[ -x "$weft" ] || { echo "make-replay-goldens: no $weft: run swift build first" >&2; exit 1; }
command -v editcap >/dev/null || { echo "make-replay-goldens: needs editcap (scripts/setup installs tshark)" >&2; exit 1; }

editcap -F pcap -C 14 -T rawip -r "$fixtures/offloads-off-flannel1.pcap" "$fixtures/golden-inner.pcap" 1-24
"$weft" replay encap --backend vxlan --routes "$fixtures/bed-routes.json" --public-ip 198.18.0.1 \
  --input "$fixtures/golden-inner.pcap" --output "$fixtures/golden-encap-vxlan.pcap"
"$weft" replay encap --backend udp --routes "$fixtures/bed-routes-udp.json" --public-ip 198.18.0.1 \
  --input "$fixtures/golden-inner.pcap" --output "$fixtures/golden-encap-udp.pcap"
