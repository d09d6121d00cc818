import Capture
import Foundation
import Testing

@Suite struct CaptureReaderTests {
    private func readAll(_ path: String) throws -> (LinkType, [CapturedPacket]) {
        var reader = try CaptureReader(path: path)
        return (reader.linkType, try reader.readAll())
    }

    /// Reads the pcap record headers by hand (little-endian file written on this machine), as an
    /// independent check of what libpcap hands back.
    private func recordsByHand(_ path: String) throws -> [(seconds: UInt32, micros: UInt32, bytes: [UInt8])] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func word(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(data[at + $1]) << (8 * UInt32($1)) } }
        #expect(word(0) == 0xA1B2_C3D4)
        var records: [(UInt32, UInt32, [UInt8])] = []
        var offset = 24
        while offset < data.count {
            let length = Int(word(offset + 8))
            records.append((word(offset), word(offset + 4), Array(data[offset + 16..<offset + 16 + length])))
            offset += 16 + length
        }
        return records
    }

    @Test func readsEthernetCaptureAsWritten() throws {
        let path = Fixture.path("udp-gso-underlay.pcap")
        let (linkType, packets) = try readAll(path)
        let records = try recordsByHand(path)
        #expect(linkType == .ethernet)
        #expect(packets.count == records.count)
        #expect(packets.count == 9)
        for (packet, record) in zip(packets, records) {
            #expect(packet.bytes == record.bytes)
            #expect(packet.timestamp.seconds == Int64(record.seconds))
            #expect(packet.timestamp.nanoseconds == record.micros * 1000)
            #expect(!packet.isTruncated)
        }
        // The first frame is a UDP GSO super-frame: far longer than the veth's 1500-byte MTU.
        #expect(packets[0].bytes.count > 4000)
    }

    @Test func readsPcapngLikePcap() throws {
        let (pcapType, pcap) = try readAll(Fixture.path("udp-gso-underlay.pcap"))
        let (pcapngType, pcapng) = try readAll(Fixture.path("udp-gso-underlay.pcapng"))
        #expect(pcapType == pcapngType)
        #expect(pcap == pcapng)
    }

    @Test(arguments: [
        ("udp-gso-underlay-sll.pcap", LinkType.linuxSLL, 16),
        ("udp-gso-underlay-sll2.pcap", LinkType.linuxSLL2, 20),
    ])
    func readsCookedCaptures(name: String, expected: LinkType, headerLength: Int) throws {
        let (_, ethernet) = try readAll(Fixture.path("udp-gso-underlay.pcap"))
        let (linkType, cooked) = try readAll(Fixture.path(name))
        #expect(linkType == expected)
        // Same frames, only the link-layer header differs.
        #expect(
            cooked.map { Array($0.bytes.dropFirst(headerLength)) } == ethernet.map { Array($0.bytes.dropFirst(14)) }
        )
    }

    @Test func linkTypeNamesComeFromLibpcap() {
        #expect(LinkType.ethernet.description == "EN10MB")
        #expect(LinkType.raw.description == "RAW")
        #expect(LinkType.linuxSLL2.description == "LINUX_SLL2")
    }

    @Test func missingFileNamesPathAndReason() {
        let path = "/nonexistent-weft/in.pcap"
        #expect(throws: CaptureError.cannotRead(path: path, reason: "No such file or directory")) {
            _ = try CaptureReader(path: path)
        }
        let error = CaptureError.cannotRead(path: path, reason: "No such file or directory")
        #expect(error.description == "cannot read capture /nonexistent-weft/in.pcap: No such file or directory")
    }

    @Test func notACaptureIsRefused() throws {
        let path = Fixture.temporaryPath("garbage.pcap")
        try Data("this is not a capture file at all".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try CaptureReader(path: path)
            Issue.record("a text file opened as a capture")
        } catch let error {
            guard case let .cannotRead(errorPath, reason) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(errorPath == path)
            #expect(reason.contains("format") || reason.contains("magic"), "\(reason)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func fileCutMidRecordThrowsAfterTheWholeRecords() throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("udp-gso-underlay.pcap")))
        let records = try recordsByHand(Fixture.path("udp-gso-underlay.pcap"))
        // Keep the file header, the first two records whole, and half of the third.
        let cut = 24 + records[0].bytes.count + 16 + records[1].bytes.count + 16 + 16 + records[2].bytes.count / 2
        let path = Fixture.temporaryPath("cut.pcap")
        try source.prefix(cut).write(to: URL(fileURLWithPath: path))
        var reader = try CaptureReader(path: path)
        #expect(try reader.next()?.bytes == records[0].bytes)
        #expect(try reader.next()?.bytes == records[1].bytes)
        #expect(throws: CaptureError.self) { _ = try reader.next() }
    }
}
