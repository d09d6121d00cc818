#!/usr/bin/env python3
"""Turns the raw measurements `run` left in WORKDIR into OUTDIR/latest.json, OUTDIR/latest.png and a
table on stdout, every metric also as a ratio to the kernel-vxlan row (the IPv6 rows' to kernel-vxlan6,
measured in the same run).

Usage: report.py WORKDIR OUTDIR
Exit status 1 when a row failed (skipped rows do not count) or the kernel-vxlan row ran and failed.
"""
import json
import math
import os
import re
import sys

BASELINE = "kernel-vxlan"
# Each inner family's rows are compared with the kernel carrying that family.
BASELINES = {"ipv4": BASELINE, "ipv6": "kernel-vxlan6"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# key, label, unit, which way is better. Ratios are always row / its family's baseline.
METRICS = [
    ("tcp_gbit_s", "TCP single stream", "Gbit/s", "higher"),
    ("udp64_delivered_pps", "UDP 64 B delivered", "packets/s", "higher"),
    ("ping_avg_ms", "RTT avg", "ms", "lower"),
    ("ping_p99_ms", "RTT p99", "ms", "lower"),
    ("tcp_cpu_s_per_gb", "CPU per GB (TCP)", "CPU s/GB", "lower"),
]


def read_text(path, default=None):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return default


def read_settings(work):
    settings = {}
    for line in (read_text(os.path.join(work, "settings.env"), "") or "").splitlines():
        key, _, value = line.partition("=")
        settings[key] = value
    return settings


def read_offloads(work):
    """'pod1/eth0 tcp-segmentation-offload: on' lines → {"pod1/eth0": {"tcp-segmentation-offload": "on"}}."""
    offloads = {}
    for line in (read_text(os.path.join(work, "offloads.txt"), "") or "").splitlines():
        match = re.match(r"(\S+) ([\w-]+): (.*)", line)
        if match:
            offloads.setdefault(match.group(1), {})[match.group(2)] = match.group(3).strip()
    return offloads


def read_counters(path):
    counters = {}
    for line in (read_text(path, "") or "").splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            counters[name] = int(value)
    return counters


def stat_times(stat):
    """(utime, stime) seconds from a /proc/PID/stat line, or None for a process that was gone."""
    if ")" not in stat:
        return None
    # Fields after the command name (which may hold spaces) start at field 3, state.
    rest = stat.rsplit(")", 1)[1].split()
    return int(rest[11]) / CLOCK_TICKS, int(rest[12]) / CLOCK_TICKS


def read_cpu_snapshot(path):
    """The wall clock, the aggregate /proc/stat fields, per dataplane pid and per ksoftirqd pid
    (utime, stime), per harness cgroup (user, system); all in seconds."""
    text = read_text(path)
    if text is None:
        return None
    snapshot = {"time": None, "cpu": None, "pids": {}, "kthreads": {}, "cgroups": {}}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "time":
            snapshot["time"] = float(rest)
        elif kind == "cpu":
            names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
            snapshot["cpu"] = dict(zip(names, (int(v) / CLOCK_TICKS for v in rest.split()[:8])))
        elif kind in ("pid", "kthread"):
            times = stat_times(rest)
            if times is not None:
                snapshot["pids" if kind == "pid" else "kthreads"][rest.split(" ", 1)[0]] = times
        elif kind == "cgroup":
            fields = rest.split()  # "<group> user N system N"
            values = dict(zip(fields[1::2], (int(v) / CLOCK_TICKS for v in fields[2::2])))
            snapshot["cgroups"][fields[0]] = (values.get("user", 0.0), values.get("system", 0.0))
    return snapshot if snapshot["time"] is not None and snapshot["cpu"] is not None else None


def summed_delta(before, after):
    """Summed (user, system) growth of the entries present in both snapshots."""
    user = system = 0.0
    for key, (u, s) in after.items():
        if key in before:
            user += u - before[key][0]
            system += s - before[key][1]
    return user, system


def cpu_window(before, after):
    """CPU used between two snapshots, counted two ways.
    system_wide: /proc/stat system + irq + softirq of every process on every core, so a kernel
    dataplane has a number; disturbed by anything else the machine runs.
    cgroup: the kernel time of the processes the harness started (tick accounting charges softirq
    work to the task it interrupts, so the kernel dataplane's forwarding lands here), the dataplane
    group's user and kernel time, and ksoftirqd's time; undisturbed by other work."""
    if before is None or after is None:
        return None
    delta = {k: after["cpu"][k] - before["cpu"][k] for k in before["cpu"]}
    dataplane_user, dataplane_system = summed_delta(before["pids"], after["pids"])
    window = {
        "wall_s": after["time"] - before["time"],
        "system_wide": {
            "system_s": delta["system"],
            "irq_s": delta["irq"],
            "softirq_s": delta["softirq"],
            "kernel_s": delta["system"] + delta["irq"] + delta["softirq"],
            "dataplane_user_s": dataplane_user,
            "dataplane_system_s": dataplane_system,
        },
        "cgroup": None,
    }
    if "bed" in before["cgroups"] and "bed" in after["cgroups"] and "dataplane" in after["cgroups"]:
        bed_user, bed_system = summed_delta({"g": before["cgroups"]["bed"]}, {"g": after["cgroups"]["bed"]})
        group_user, group_system = summed_delta({"g": before["cgroups"]["dataplane"]}, {"g": after["cgroups"]["dataplane"]})
        _, ksoftirqd = summed_delta(before["kthreads"], after["kthreads"])
        window["cgroup"] = {
            "bed_user_s": bed_user,
            "bed_system_s": bed_system,
            "dataplane_user_s": group_user,
            "dataplane_system_s": group_system,
            "ksoftirqd_s": ksoftirqd,
            # The load generators' user time (iperf3, trafgen) is not the dataplane's cost.
            "cost_s": bed_system + group_user + group_system + ksoftirqd,
        }
    return window


def cpu_cost(window, background_rate):
    """Completes a window with its system-wide cost: kernel time less the background rate measured
    while the dataplane idled (the machine is shared), plus the dataplane's user time (its kernel
    time is already in the system-wide figure). cost_s is the cgroup cost where there is one."""
    if window is None:
        return None
    wide = window["system_wide"]
    background = background_rate * window["wall_s"]
    # The background sample is noisy on a busy machine; the dataplane's own kernel time is a floor.
    kernel = max(wide["dataplane_system_s"], wide["kernel_s"] - background)
    wide["background_kernel_s"] = background
    wide["cost_s"] = kernel + wide["dataplane_user_s"]
    window["method"] = "cgroup" if window["cgroup"] else "system-wide"
    window["cost_s"] = (window["cgroup"] or wide)["cost_s"]
    return window


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def parse_ping(text):
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", text or "")]
    summary = re.search(r"(\d+) packets transmitted, (\d+) received", text or "")
    if not times:
        return None
    return {
        "sent": int(summary.group(1)) if summary else None,
        "received": len(times),
        "avg_ms": sum(times) / len(times),
        "p99_ms": percentile(times, 0.99),
        "min_ms": min(times),
        "max_ms": max(times),
    }


def parse_iperf(text):
    try:
        result = json.loads(text or "")
    except ValueError:
        return None, "iperf3 printed no JSON"
    if result.get("error"):
        return None, "iperf3: " + result["error"]
    end = result.get("end", {})
    received, sent = end.get("sum_received"), end.get("sum_sent", {})
    if not received or not received.get("bytes"):
        return None, "iperf3 reported no received bytes"
    return {
        "gbit_s": received["bits_per_second"] / 1e9,
        "bytes": received["bytes"],
        "seconds": received["seconds"],
        "retransmits": sent.get("retransmits"),
    }, None


def read_row(directory):
    path = lambda name: os.path.join(directory, name)
    status_line = (read_text(path("status"), "failed: the row did not finish") or "").strip()
    status, _, reason = status_line.partition(": ")
    row = {
        "name": read_text(path("name"), "").strip(),
        "family": "ipv6" if (read_text(path("family"), "4") or "4").strip() == "6" else "ipv4",
        # The tunnel's outer family: IPv4 (198.18.0.N) but for the -u6 rows (2001:db8::N).
        "underlay": "ipv6" if (read_text(path("underlay"), "4") or "4").strip() == "6" else "ipv4",
        "status": status,
        "reason": reason or None,
        "dataplane": (read_text(path("dataplane"), "") or "").strip().splitlines(),
        "container_mtu": int(read_text(path("mtu"), "0") or 0) or None,
    }
    output = []
    for n in (1, 2):
        lines = (read_text(path("weft%d.out" % n), "") or "").splitlines()
        output += ["host%d: %s" % (n, line) for line in lines if line.strip() and line.strip() != "ready"]
        if status != "ok":  # why it would not start or forward
            output += ["host%d stderr: %s" % (n, line) for line in (read_text(path("weft%d.err" % n), "") or "").splitlines()[-5:]]
    if output:
        row["dataplane_output"] = output
    if status != "ok":
        return row

    idle = cpu_window(read_cpu_snapshot(path("cpu-idle-before")), read_cpu_snapshot(path("cpu-idle-after")))
    background_rate = 0.0
    if idle and idle["wall_s"] > 0:
        wide = idle["system_wide"]
        background_rate = max(0.0, wide["kernel_s"] - wide["dataplane_system_s"]) / idle["wall_s"]

    row["ping"] = parse_ping(read_text(path("ping.txt")))

    tcp, error = parse_iperf(read_text(path("iperf.json")))
    tcp_cpu = cpu_cost(cpu_window(read_cpu_snapshot(path("cpu-tcp-before")), read_cpu_snapshot(path("cpu-tcp-after"))), background_rate)
    if tcp is None:
        row["status"], row["reason"] = "failed", error
    else:
        tcp["cpu"] = tcp_cpu
        gigabytes = tcp["bytes"] / 1e9
        tcp["cpu_s_per_gb"] = tcp_cpu["cost_s"] / gigabytes if tcp_cpu else None
        tcp["system_wide_cpu_s_per_gb"] = tcp_cpu["system_wide"]["cost_s"] / gigabytes if tcp_cpu else None
    row["tcp"] = tcp

    tx_before, tx_after = read_counters(path("udp-tx-before")), read_counters(path("udp-tx-after"))
    rx_before, rx_after = read_counters(path("udp-rx-before")), read_counters(path("udp-rx-after"))
    udp_window = cpu_window(read_cpu_snapshot(path("cpu-udp-before")), read_cpu_snapshot(path("cpu-udp-after")))
    attempted = re.search(r"(\d+) packets outgoing", read_text(path("trafgen.txt"), "") or "")
    if udp_window and tx_after and rx_after:
        sent = tx_after["tx_packets"] - tx_before["tx_packets"]
        # Datagrams that reached pod2's UDP layer: queued at the sink (InDatagrams counts them when
        # read, so at most the few its buffer holds are missed), refused by its full buffer, or,
        # had the sink not been there, refused for want of a socket.
        # IPv4's counters in /proc/net/snmp, IPv6's in snmp6 (Udp6…): each row moves only its family's.
        delivered = sum(rx_after.get(prefix + name, 0) - rx_before.get(prefix + name, 0)
                        for prefix in ("Udp", "Udp6") for name in ("InDatagrams", "RcvbufErrors", "NoPorts"))
        seconds = udp_window["wall_s"]
        row["udp64"] = {
            "ip_packet_bytes": 64,
            "attempted_packets": int(attempted.group(1)) if attempted else None,
            "sent_packets": sent,
            "sender_tx_dropped": tx_after["tx_dropped"] - tx_before["tx_dropped"],
            "delivered_packets": delivered,
            "receiver_interface_packets": rx_after["rx_packets"] - rx_before["rx_packets"],
            "receiver_checksum_errors": sum(rx_after.get(name, 0) - rx_before.get(name, 0)
                                            for name in ("UdpInCsumErrors", "Udp6InCsumErrors")),
            "seconds": seconds,
            "sent_pps": sent / seconds,
            "delivered_pps": delivered / seconds,
            "loss_ratio": (sent - delivered) / sent if sent > 0 else None,
            "cpu": cpu_cost(udp_window, background_rate),
        }
        if sent == 0:
            row["status"], row["reason"] = "failed", "trafgen sent nothing: " + (read_text(path("trafgen.txt"), "") or "").strip()[-200:]
    else:
        row["udp64"] = None
        row["status"], row["reason"] = "failed", "UDP counters missing"
    row["background_kernel_cpu_per_s"] = background_rate
    return row


def metric_values(row):
    if row["status"] != "ok":
        return {}
    tcp, udp, ping = row.get("tcp") or {}, row.get("udp64") or {}, row.get("ping") or {}
    return {
        "tcp_gbit_s": tcp.get("gbit_s"),
        "udp64_delivered_pps": udp.get("delivered_pps"),
        "ping_avg_ms": ping.get("avg_ms"),
        "ping_p99_ms": ping.get("p99_ms"),
        "tcp_cpu_s_per_gb": tcp.get("cpu_s_per_gb"),
    }


def format_number(value, digits=3):
    if value is None:
        return "-"
    if abs(value) >= 1e6:
        return "%.2fM" % (value / 1e6)
    if abs(value) >= 1e3:
        return "%.1fk" % (value / 1e3)
    return "%.*g" % (digits, value)


def print_table(rows, ratios):
    header = ["row", "inner/underlay"] + ["%s (%s)" % (label, unit) for _, label, unit, _ in METRICS] + ["UDP loss", "dataplane CPU s (TCP)"]
    lines = [header]
    for row in rows:
        if row["status"] != "ok":
            lines.append([row["name"], "%s: %s" % (row["status"], row["reason"] or "")])
            continue
        values = row["metrics"]
        cells = [row["name"], "%s/%s" % (row["family"].replace("ip", "IP"), row["underlay"].replace("ip", "IP"))]
        for key, _, _, _ in METRICS:
            ratio = ratios.get(row["name"], {}).get(key)
            cell = format_number(values.get(key))
            if ratio is not None:
                cell += " (x%.2f)" % ratio
            cells.append(cell)
        udp = row.get("udp64") or {}
        cells.append("-" if udp.get("loss_ratio") is None else "%.1f%%" % (100 * udp["loss_ratio"]))
        cpu = (row.get("tcp") or {}).get("cpu") or {}
        counted = cpu.get("cgroup") or cpu.get("system_wide") or {}
        dataplane = counted.get("dataplane_user_s", 0) + counted.get("dataplane_system_s", 0)
        cells.append(format_number(dataplane) if not row["name"].startswith("kernel-") else "(in kernel)")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines if len(line) == len(header)) for i in range(len(header))]
    widths[0] = max(len(line[0]) for line in lines)
    for line in lines:
        if len(line) != len(header):  # a skipped or failed row: its reason spans the columns
            print(line[0].ljust(widths[0]) + "  " + line[1])
        else:
            print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
    print("(xN) = ratio to %s (IPv6 rows: to %s); %s" % (BASELINE, BASELINES["ipv6"], ", ".join("%s: %s is better" % (label, better) for _, label, _, better in METRICS)))


def draw_chart(rows, ratios, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: no matplotlib for this python (apt-get install python3-matplotlib); %s not drawn" % path, file=sys.stderr)
        return False
    measured = [row["name"] for row in rows if row["name"] in ratios]
    skipped = ["%s (%s)" % (row["name"], row["status"]) for row in rows if row["name"] not in ratios]
    figure, axes = plt.subplots(figsize=(11, 5.5))
    width = 0.8 / max(1, len(measured))
    for index, name in enumerate(measured):
        xs, heights = [], []
        for position, (key, _, _, _) in enumerate(METRICS):
            ratio = ratios[name].get(key)
            if ratio is not None:
                xs.append(position - 0.4 + width * (index + 0.5))
                heights.append(ratio)
        row = next(row for row in rows if row["name"] == name)
        label = name if row["family"] == "ipv4" else "%s (vs %s)" % (name, BASELINES[row["family"]])
        if row["underlay"] == "ipv6":
            label += ", IPv6 underlay"
        # Hatched: an IPv6 row; 20 colours, so a full run's 14 rows each have their own.
        bars = axes.bar(xs, heights, width, label=label, color=plt.cm.tab20(index % 20),
                        hatch="//" if row["family"] == "ipv6" else None)
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.axhline(1.0, color="black", linewidth=0.8)
    every = [value for name in measured for value in ratios[name].values() if value]
    if every and max(every) / min(every) > 20:
        axes.set_yscale("log")  # ratios from x0.02 to x400 (a slow row) stay readable on one chart
    axes.set_xticks(range(len(METRICS)))
    baselines = [row for name in BASELINES.values() for row in rows if row["name"] == name and row["status"] == "ok"]
    labels = []
    for key, label, unit, better in METRICS:
        text = "%s\n(%s is better)" % (label, better)
        for baseline in baselines:
            if baseline["metrics"].get(key) is not None:
                text += "\n%s: %s %s" % (baseline["name"], format_number(baseline["metrics"][key]), unit)
        labels.append(text)
    axes.set_xticklabels(labels, fontsize=9)
    axes.set_ylabel("ratio to %s%s%s" % (BASELINE, " (IPv6 rows: %s)" % BASELINES["ipv6"] if len(baselines) > 1 else "",
                                         " (log scale)" if axes.get_yscale() == "log" else ""))
    title = "Weft dataplanes vs flannel's kernel VXLAN (same namespace bed, one run)"
    if skipped:
        title += "\nnot measured: " + ", ".join(skipped)
    axes.set_title(title, fontsize=10)
    if measured:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    work, outdir = sys.argv[1], sys.argv[2]
    settings = read_settings(work)
    streams = int(settings.get("streams", "1"))
    if streams > 1:
        METRICS[0] = ("tcp_gbit_s", "TCP %d streams" % streams, "Gbit/s", "higher")
    rows_dir = os.path.join(work, "rows")
    directories = sorted(os.listdir(rows_dir), key=lambda name: int(name.split("-", 1)[0])) if os.path.isdir(rows_dir) else []
    rows = [read_row(os.path.join(rows_dir, name)) for name in directories]
    for row in rows:
        row["metrics"] = metric_values(row)

    ratios = {}
    for row in rows:
        baseline = next((base for base in rows if base["name"] == BASELINES[row["family"]] and base["status"] == "ok"), None)
        if baseline and row["status"] == "ok":
            ratios[row["name"]] = {
                key: (row["metrics"][key] / baseline["metrics"][key]
                      if row["metrics"].get(key) is not None and baseline["metrics"].get(key) else None)
                for key, _, _, _ in METRICS
            }

    number = lambda key: float(settings[key]) if key in settings else None
    result = {
        "schema": "weft-harness/1",
        "generated_by": "Benchmarks/harness/run",
        "started": settings.get("started"),
        "finished": settings.get("finished"),
        "machine": {
            "kernel": os.uname().release,
            "cpus": os.cpu_count(),
            "loadavg_start": settings.get("loadavg_start"),
            "loadavg_end": settings.get("loadavg_end"),
        },
        "settings": {
            "quick": settings.get("quick") == "1",
            "tcp_duration_s": number("tcp_duration_s"),
            "udp_duration_s": number("udp_duration_s"),
            "ping_count": int(settings.get("ping_count", "0")),
            "ping_interval_s": number("ping_interval_s"),
            "cpu_background_sample_s": number("baseline_s"),
            "weft": settings.get("weft"),
            "weft_batch": int(settings.get("batch", "0")),
            "weft_workers": int(settings.get("workers", "0")),
            "weft_busy_poll_us": int(settings.get("busy_poll_us", "0")),
            "tcp_streams": int(settings.get("streams", "1")),
            "tcp": "iperf3 -c 10.244.2.2 (IPv6 rows: fc00:0:0:2::2) -t D -P streams, pod1 -> pod2; "
                   "Gbit/s as received (all streams)",
            "udp64": "trafgen on one CPU in pod1: 64-byte IPv4 packets (20 IP + 8 UDP + 36 payload; "
                     "78-byte frames on the container veth), one flow 10.244.1.2:40000 -> 10.244.2.2:9; "
                     "sent = pod1 eth0 tx_packets delta, delivered = datagrams that reached pod2's UDP layer "
                     "(/proc/net/snmp Udp InDatagrams + RcvbufErrors + NoPorts deltas; a sink socket on port 9 "
                     "that is never read). IPv6 rows: 64-byte IPv6 packets (40 IP + 8 UDP + 16 payload), "
                     "fc00:0:0:1::2 -> fc00:0:0:2::2, /proc/net/snmp6 Udp6 counters",
            "ping": "ping -4/-6 -i 0.01 pod1 -> pod2 on an idle path; p99 nearest-rank",
            "cpu_method": settings.get("cpu_method"),
            "cpu": "cgroup: cost_s = kernel time (system + irq + softirq) of the processes the harness started "
                   "(cpuacct; tick accounting charges softirq to the interrupted task) + the dataplane group's "
                   "user and kernel time + ksoftirqd's time. system_wide: /proc/stat system + irq + softirq "
                   "less the background rate sampled while the dataplane idled, plus the dataplane processes' "
                   "utime. cpu_s_per_gb = cost_s (cgroup where available) / GB received by iperf3",
            "offloads": "kernel defaults on every device of the bed; none changed (recorded under 'offloads'). "
                        "The --offloads rows' TUNs as weft set them up are recorded there too, as '<row>/hostN/<tun>'",
            "sysctls": "hosts: net.ipv4.ip_forward=1, rp_filter=0 (all, default, eth0, veth0), "
                       "net.ipv6.conf.all.forwarding=1; every namespace: IPv6 disabled, except during an IPv6 "
                       "row on the container veths (fc00:0:0:N::1/64 and ::2/64, no DAD) and the tunnel device, "
                       "and during a -u6 row on the hosts' eth0 (2001:db8::N/64, no DAD)",
            "ipv6_underlay": "the IPv6 rows carry inner IPv6 over the IPv4 underlay (198.18.0.N), as Weft's engine "
                             "does; kernel-vxlan6 is flannel.1 (VNI 1, port 8472, MTU 1450) with flannel's IPv6 entries. "
                             "The -u6 rows (each row's 'underlay': ipv6) tunnel over an IPv6 underlay, eth0 2001:db8::N/64: "
                             "kernel-vxlan6-u6 is flanneld's flannel-v6.1 (VNI 1, port 8472, MTU 1430 = 1500 - 70), "
                             "weft-vxlan6-u6 and weft-vxlan6-offloads-u6 Weft's engine sending from [2001:db8::N]:8472's "
                             "socket with flannel-v6.1's MACs; container MTU 1430",
        },
        "offloads": read_offloads(work),
        "baseline": BASELINE,
        "baselines": BASELINES,
        "metrics": [{"key": k, "label": l, "unit": u, "better": b} for k, l, u, b in METRICS],
        "rows": rows,
        "ratios": ratios,
    }
    os.makedirs(outdir, exist_ok=True)
    json_path = os.path.join(outdir, "latest.json")
    with open(json_path + ".tmp", "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    os.replace(json_path + ".tmp", json_path)

    print_table(rows, ratios)
    busiest = max((row.get("background_kernel_cpu_per_s", 0) for row in rows), default=0)
    if busiest > 0.25 and settings.get("cpu_method") != "cgroup":
        print("note: other processes used up to %.2f CPU/s of kernel time while the dataplanes idled; "
              "the CPU figures are corrected for it but noisy (loadavg at start %s)" % (busiest, settings.get("loadavg_start")))
    png_path = os.path.join(outdir, "latest.png")
    if draw_chart(rows, ratios, png_path):
        print("wrote %s and %s" % (json_path, png_path))
    else:
        print("wrote %s" % json_path)

    failed = [row for row in rows if row["status"] == "failed"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
