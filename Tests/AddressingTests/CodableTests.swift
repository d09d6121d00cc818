import Addressing
import Foundation
import Testing

@Suite struct AddressingCodableTests {
    struct Record: Codable, Equatable {
        var ip: IPv4Address
        var net: IPv4Prefix
        var mac: MACAddress
    }

    @Test func roundTripsAsFlannelStrings() throws {
        let json = #"{"ip":"198.18.0.1","mac":"aa:bb:cc:dd:ee:ff","net":"10.244.0.0/16"}"#
        let record = try JSONDecoder().decode(Record.self, from: Data(json.utf8))
        #expect(record.ip == IPv4Address(198, 18, 0, 1))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(String(decoding: try encoder.encode(record), as: UTF8.self) == json)
    }

    @Test func badValuesNameTheExpectedForm() {
        let json = #"{"ip":"198.18.0","mac":"aa:bb:cc:dd:ee:ff","net":"10.244.0.0/16"}"#
        #expect {
            try JSONDecoder().decode(Record.self, from: Data(json.utf8))
        } throws: { error in
            String(describing: error).contains("not an IPv4 address")
        }
    }
}
