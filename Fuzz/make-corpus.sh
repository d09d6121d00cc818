#!/usr/bin/env bash
# Remakes Fuzz/Corpus, the seed inputs scripts/fuzz starts from, from the committed captures in
# Tests/CaptureTests/Fixtures (scripts/capture-fixtures.sh): real packets give the fuzzer every
# header chain a kernel sends, which random bytes take long to find. Each seed is the selector
# byte WeftFuzz.swift switches on, then the input for that parser:
#   2  a whole underlay frame (Ethernet), IPv4 and IPv6 underlay, for OuterDatagram.parse
#   1  an IPv4 VXLAN payload, 10 an IPv6 one (inner destination MAC set to the fuzzer's VtepMAC)
#   0  an inner IPv4 packet, 8 an inner IPv6 packet, 9 the same as an offender for ICMPv6 errors
#   4  an inner IPv6 TCP and UDP packet behind a virtio-net header declaring TSO6 / USO6, for
#      segmentation (the TUN hands such super-packets out)
#   5  a run of inner IPv6 TCP segments of one flow, length-prefixed, for coalescing
# Seeds are named <selector>-<fixture>-<frame number>, so a remake with unchanged fixtures is
# byte for byte the same. Usage: Fuzz/make-corpus.sh (needs python3).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f Fuzz/Corpus/*
python3 - Tests/CaptureTests/Fixtures Fuzz/Corpus <<'PY'
import os, struct, sys

fixtures, corpus = sys.argv[1], sys.argv[2]
FUZZ_MAC = bytes.fromhex("020000000001")

def frames(name):
    data = open(os.path.join(fixtures, name), "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    offset, number = 24, 0
    while offset + 16 <= len(data):
        captured = struct.unpack(order + "I", data[offset + 8:offset + 12])[0]
        number += 1
        yield number, data[offset + 16:offset + 16 + captured]
        offset += 16 + captured

def save(selector, name, number, body):
    stem = name.rsplit(".", 1)[0]
    with open(os.path.join(corpus, "%d-%s-%03d" % (selector, stem, number)), "wb") as seed:
        seed.write(bytes([selector]) + body)

def spread(items, count):
    """At most `count` items, evenly spaced, so every phase of the capture is represented."""
    if len(items) <= count:
        return items
    return [items[i * len(items) // count] for i in range(count)]

for name in ("offloads-off-underlay.pcap", "inner6-underlay.pcap", "underlay6-underlay.pcap"):
    everything = list(frames(name))
    for number, frame in spread(everything, 6):
        save(2, name, number, frame)
    for number, frame in spread([f for f in everything if f[1][12:14] == b"\x08\x00"], 6):
        payload = bytearray(frame[14 + (frame[14] & 0x0F) * 4 + 8:])
        payload[8:14] = FUZZ_MAC
        inner_type = payload[20:22]
        save(10 if inner_type == b"\x86\xdd" else 1, name, number, bytes(payload))

for name in ("offloads-off-flannel1.pcap", "inner6-flannel1.pcap", "underlay6-flannelv6.pcap"):
    packets = [(n, f[14:]) for n, f in frames(name)]
    ipv4 = [p for p in packets if p[1][:1] and p[1][0] >> 4 == 4]
    ipv6 = [p for p in packets if p[1][:1] and p[1][0] >> 4 == 6]
    for number, packet in spread(ipv4, 6):
        save(0, name, number, packet)
    for number, packet in spread(ipv6, 8):
        save(8, name, number, packet)
        save(9, name, number, packet)
    # Consecutive TCP data segments (next header 6) of the IPv6 flow, as one coalescing batch
    # within scripts/fuzz's -max_len of 4096.
    tcp = [p for p in ipv6 if p[1][6] == 6 and len(p[1]) > 72]
    batch = b""
    for _, packet in tcp[:8]:
        if len(batch) + 2 + len(packet) > 4095:
            break
        batch += struct.pack("!H", len(packet)) + packet
    if batch:
        save(5, name, tcp[0][0], batch)
    # virtio_net_hdr: flags NEEDS_CSUM, gso_type, hdr_len, gso_size, csum_start, csum_offset (LE).
    if tcp:
        number, packet = tcp[0]
        headers = 40 + (packet[52] >> 4) * 4
        save(4, name, number, struct.pack("<BBHHHH", 1, 4, headers, 500, 40, 16) + packet)
    udp = [p for p in ipv6 if p[1][6] == 17 and len(p[1]) > 600]
    if udp:
        number, packet = udp[0]
        save(4, name, number, struct.pack("<BBHHHH", 1, 5, 48, 200, 40, 6) + packet)
PY
echo "make-corpus: $(ls Fuzz/Corpus | wc -l) seeds, $(du -sh Fuzz/Corpus | cut -f1)"
