import Addressing
import CShims
import Foundation
import Glibc
import TestSupport
import TestThreads
import Testing

/// A UDP socket bound to `address`:`port` (0: any port), made in the calling thread's namespace.
/// The caller closes it.
func openUDP(_ address: IPv4Address, port: UInt16 = 0) throws -> Int32 {
    let fd = weft_udp_socket()
    guard fd >= 0 else { throw TestFailure("socket: errno \(-fd)") }
    let bound = weft_bind_ipv4(fd, address.networkOrder, port.bigEndian)
    guard bound == 0 else {
        close(fd)
        throw TestFailure("bind \(address):\(port): errno \(-bound)")
    }
    return fd
}

func sendUDP(_ fd: Int32, _ bytes: [UInt8], to address: IPv4Address, port: UInt16) throws {
    let sent = bytes.withUnsafeBytes {
        weft_sendto_ipv4(fd, $0.baseAddress, $0.count, address.networkOrder, port.bigEndian)
    }
    guard sent == bytes.count else { throw TestFailure("sendto \(address):\(port): \(sent)") }
}

/// The next datagram on `fd` within `milliseconds`: payload and sender, or nil.
func receiveUDP(_ fd: Int32, milliseconds: Int32) -> (payload: [UInt8], sender: IPv4Address)? {
    guard weft_poll_readable(fd, milliseconds) == 1 else { return nil }
    var bytes = [UInt8](repeating: 0, count: 2048)
    var address: UInt32 = 0
    var port: UInt16 = 0
    let count = bytes.withUnsafeMutableBytes { weft_recvfrom_ipv4(fd, $0.baseAddress, $0.count, 0, &address, &port) }
    guard count >= 0 else { return nil }
    return (Array(bytes[..<count]), IPv4Address(networkOrder: address))
}

/// Starts tcpdump in `namespace` writing `path` (`arguments` are everything after `-w path`) and
/// returns once it captures: tcpdump opens its file only after the capture is active, so the
/// file's appearance is the ready signal, where a fixed sleep was a guess.
func startCapture(in namespace: TestNamespace, device: String, path: String, filter: [String]) throws -> Process {
    // --immediate-mode: each packet reaches tcpdump as it comes, not when the kernel retires a
    // ring block (up to a second later, and lost to the SIGKILL that ends the capture).
    let process = try namespace.start(
        ["tcpdump", "-i", device, "-s", "0", "-U", "--immediate-mode", "-n", "-w", path] + filter
    )
    guard
        waitUntil(timeout: .seconds(10), interval: .milliseconds(20), { FileManager.default.fileExists(atPath: path) })
    else {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw TestFailure("tcpdump on \(device) in \(namespace.name) did not start capturing within 10 s")
    }
    return process
}

/// What one `ping` run printed.
struct PingResult {
    let output: String
    let transmitted: Int
    let received: Int
    /// Average RTT in milliseconds (nil when nothing came back).
    let averageRTT: Double?

    init(output: String) {
        self.output = output
        func number(before marker: String) -> Int {
            guard let range = output.range(of: marker) else { return -1 }
            let digits = output[..<range.lowerBound].reversed().prefix { $0.isNumber }
            return Int(String(digits.reversed())) ?? -1
        }
        transmitted = number(before: " packets transmitted")
        received = number(before: " received")
        if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("rtt ") }),
            let values = line.split(separator: "=").last?.split(separator: "/"), values.count >= 2
        {
            averageRTT = Double(values[1].trimmingCharacters(in: .whitespaces))
        } else {
            averageRTT = nil
        }
    }
}

/// A process started in a namespace with its standard output on a pipe (standard error discarded).
final class NamespaceProcess {
    let process = Process()
    private let pipe = Pipe()
    private var pending: [UInt8] = []

    init(_ namespace: TestNamespace, _ command: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace.name] + command
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// The next line of output within `milliseconds`, or nil.
    func readLine(milliseconds: Int) -> String? {
        let fd = pipe.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(Double(milliseconds) / 1000)
        while Date() < deadline {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            guard weft_poll_readable(fd, 50) == 1 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { weft_read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return nil }
            pending += chunk[..<count]
        }
        return nil
    }

    /// Waits for exit; everything printed after what `readLine` took.
    func finish() -> (status: Int32, output: String) {
        let rest = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: pending + [UInt8](rest), as: UTF8.self))
    }

    /// SIGTERM, then the JSON report `weft dataplane` prints as it stops, which must exit 0.
    func stopAndReport(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        process.terminate()
        let (status, output) = finish()
        #expect(status == 0, "\(output)", sourceLocation: sourceLocation)
        return try #require(
            try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
            "\(output)",
            sourceLocation: sourceLocation
        )
    }

    func stop() {
        if process.isRunning { process.terminate() }
    }
}

/// `ping -c count -i interval` from `namespace`, run to completion (IPv4 or IPv6, as `destination` is).
func ping(
    from namespace: TestNamespace,
    _ destination: some IPAddress,
    count: Int,
    interval: String = "0.2"
) throws -> PingResult {
    let (_, output) = try TwoHostBed.execute(
        namespace,
        ["ping", "-n", "-c", "\(count)", "-i", interval, "-W", "1", "\(destination)"]
    )
    return PingResult(output: output)
}
