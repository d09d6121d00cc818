import Capture
import Foundation
import Testing

@Suite struct CaptureWriterTests {
    private let packets: [CapturedPacket] = [
        CapturedPacket(
            timestamp: CaptureTimestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789),
            bytes: [0x45, 0, 0, 20] + [UInt8](repeating: 0xAB, count: 16)
        ),
        CapturedPacket(
            timestamp: CaptureTimestamp(seconds: 1_700_000_001, nanoseconds: 999_999_999),
            bytes: (0..<1500).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        ),
        CapturedPacket(timestamp: CaptureTimestamp(seconds: 1_700_000_002, nanoseconds: 0), bytes: []),
    ]

    private func fileBytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func littleEndianWord(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }

    @Test func microsecondRoundTripTruncatesTimestamps() throws {
        let path = Fixture.temporaryPath("raw.pcap")
        let writer = try CaptureWriter(path: path, linkType: .raw)
        for packet in packets { writer.write(packet) }
        try writer.close()

        let file = try fileBytes(path)
        #expect(littleEndianWord(file, 0) == 0xA1B2_C3D4)  // microsecond pcap magic
        #expect(littleEndianWord(file, 20) == 101)  // LINKTYPE_RAW in the file, not DLT_RAW 12

        var reader = try CaptureReader(path: path)
        #expect(reader.linkType == .raw)
        let read = try reader.readAll()
        #expect(read.map(\.bytes) == packets.map(\.bytes))
        #expect(
            read.map(\.timestamp)
                == packets.map {
                    CaptureTimestamp(seconds: $0.timestamp.seconds, nanoseconds: $0.timestamp.nanoseconds / 1000 * 1000)
                }
        )
    }

    @Test func nanosecondRoundTripKeepsEveryDigit() throws {
        let path = Fixture.temporaryPath("ethernet.pcap")
        let writer = try CaptureWriter(path: path, linkType: .ethernet, precision: .nanosecond)
        for packet in packets { writer.write(packet) }
        try writer.close()

        let file = try fileBytes(path)
        #expect(littleEndianWord(file, 0) == 0xA1B2_3C4D)  // nanosecond pcap magic
        #expect(littleEndianWord(file, 20) == 1)

        var reader = try CaptureReader(path: path)
        #expect(reader.linkType == .ethernet)
        #expect(try reader.readAll() == packets)
    }

    @Test func originalLengthIsKept() throws {
        let path = Fixture.temporaryPath("snapped.pcap")
        let writer = try CaptureWriter(path: path, linkType: .raw)
        [UInt8](repeating: 1, count: 64).withUnsafeBytes {
            writer.write($0, timestamp: .zero, originalLength: 9000)
        }
        try writer.close()
        var reader = try CaptureReader(path: path)
        let packet = try #require(try reader.next())
        #expect(packet.originalLength == 9000)
        #expect(packet.isTruncated)
    }

    @Test func unwritablePathNamesPathAndReason() {
        let path = "/nonexistent-weft/out.pcap"
        do {
            _ = try CaptureWriter(path: path, linkType: .raw)
            Issue.record("created a capture in a missing directory")
        } catch let error {
            guard case let .cannotWrite(errorPath, reason) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(errorPath == path)
            #expect(reason.contains("No such file or directory"), "\(reason)")
            #expect(error.description.hasPrefix("cannot write capture /nonexistent-weft/out.pcap: "))
        }
    }

    @Test func timestampsPrintWithNineDigits() {
        #expect(CaptureTimestamp(seconds: 5, nanoseconds: 42).description == "5.000000042")
        #expect(CaptureTimestamp(seconds: 1, nanoseconds: 0) < CaptureTimestamp(seconds: 1, nanoseconds: 1))
    }
}
