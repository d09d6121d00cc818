import Foundation

// The JSON etcd's grpc-gateway (v3.4, /v3/...) speaks. Its quirks, each handled here once:
// - bytes fields (keys, values, range ends) are base64 strings;
// - int64/uint64 fields are JSON strings ("revision": "5"); a bare number is accepted too;
// - fields holding their default (0, false, empty, enum value 0) are omitted entirely, so every
//   field is optional and a missing one means its default (no "succeeded" = false, no "kvs" = []);
// - errors are {"error", "code", "message"} with a non-200 status (unary) or a final chunk (watch).

/// An int64 that the gateway writes as a JSON string.
struct GatewayInt64: Codable, Sendable {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            value = number
            return
        }
        let text = try container.decode(String.self)
        // Lease IDs and cluster IDs are uint64 on the wire; keep the bit pattern.
        if let signed = Int64(text) {
            value = signed
        } else if let unsigned = UInt64(text) {
            value = Int64(bitPattern: unsigned)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\"\(text)\" is not a 64-bit integer"
            )
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// A bytes field: base64 on the wire, UTF-8 text in the client's API.
struct GatewayBytes: Codable, Sendable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { self.bytes = Array(text.utf8) }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\"\(text.prefix(40))\" is not base64"
            )
        }
        bytes = Array(data)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Data(bytes).base64EncodedString())
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}

enum Wire {
    struct Header: Decodable {
        var revision: GatewayInt64?
        var cluster_id: GatewayInt64?
    }

    struct KeyValue: Decodable {
        var key: GatewayBytes?
        var value: GatewayBytes?
        var create_revision: GatewayInt64?
        var mod_revision: GatewayInt64?
        var version: GatewayInt64?
        var lease: GatewayInt64?
    }

    struct RangeRequest: Encodable {
        var key: GatewayBytes
        var range_end: GatewayBytes?
        var revision: GatewayInt64?
        var limit: GatewayInt64?
        var count_only: Bool?
    }

    struct RangeResponse: Decodable {
        var header: Header?
        var kvs: [KeyValue]?
        var count: GatewayInt64?
        var more: Bool?
    }

    struct PutRequest: Encodable {
        var key: GatewayBytes
        var value: GatewayBytes
        var lease: GatewayInt64?
    }

    struct PutResponse: Decodable {
        var header: Header?
    }

    struct DeleteRangeRequest: Encodable {
        var key: GatewayBytes
        var range_end: GatewayBytes?
    }

    struct DeleteRangeResponse: Decodable {
        var header: Header?
        var deleted: GatewayInt64?
    }

    struct Compare: Encodable {
        var key: GatewayBytes
        var target: String
        var result: String
        var version: GatewayInt64?
        var create_revision: GatewayInt64?
        var mod_revision: GatewayInt64?
        var value: GatewayBytes?
    }

    struct RequestOp: Encodable {
        var request_range: RangeRequest?
        var request_put: PutRequest?
        var request_delete_range: DeleteRangeRequest?
    }

    struct TxnRequest: Encodable {
        var compare: [Compare]
        var success: [RequestOp]
        var failure: [RequestOp]
    }

    struct ResponseOp: Decodable {
        var response_range: RangeResponse?
        var response_put: PutResponse?
        var response_delete_range: DeleteRangeResponse?
    }

    struct TxnResponse: Decodable {
        var header: Header?
        var succeeded: Bool?
        var responses: [ResponseOp]?
    }

    struct CompactionRequest: Encodable {
        var revision: GatewayInt64
        var physical: Bool?
    }

    struct LeaseGrantRequest: Encodable {
        var TTL: GatewayInt64
        var ID: GatewayInt64?
    }

    struct LeaseGrantResponse: Decodable {
        var header: Header?
        var ID: GatewayInt64?
        var TTL: GatewayInt64?
        var error: String?
    }

    struct LeaseIDRequest: Encodable {
        var ID: GatewayInt64
    }

    /// Unary as far as the client is concerned, but served as a stream: the body is {"result": {...}}.
    struct LeaseKeepAliveChunk: Decodable {
        var result: LeaseKeepAliveResult?
        var error: GatewayErrorBody?
    }

    struct LeaseKeepAliveResult: Decodable {
        var header: Header?
        var ID: GatewayInt64?
        var TTL: GatewayInt64?
    }

    struct LeaseTimeToLiveResponse: Decodable {
        var header: Header?
        var ID: GatewayInt64?
        var TTL: GatewayInt64?
        var grantedTTL: GatewayInt64?
    }

    struct Empty: Decodable {}

    /// Unary calls answer {"error", "message", "code"}; a stream's final chunk is
    /// {"error": {"grpc_code", "http_code", "message", "http_status"}} and this is its inner object.
    struct GatewayErrorBody: Decodable {
        var error: String?
        var message: String?
        var code: Int?
        var grpc_code: Int?
    }

    struct AuthenticateRequest: Encodable {
        var name: String
        var password: String
    }

    struct AuthenticateResponse: Decodable {
        var header: Header?
        var token: String?
    }

    struct WatchCreateRequest: Encodable {
        var key: GatewayBytes
        var range_end: GatewayBytes?
        var start_revision: GatewayInt64?
        var progress_notify: Bool?
    }

    /// One message of the watch's request stream: the creation, then progress requests.
    struct WatchRequest: Encodable {
        var create_request: WatchCreateRequest?
        var progress_request: WatchProgressRequest?
    }

    /// Asks etcd for a progress notification: a response with no events and the store's revision,
    /// sent once every watch on the stream has caught up (etcd ≥ 3.4).
    struct WatchProgressRequest: Encodable {}

    struct WatchChunk: Decodable {
        var result: WatchResponse?
        var error: GatewayErrorBody?
    }

    struct WatchResponse: Decodable {
        var header: Header?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: GatewayInt64?
        var cancel_reason: String?
        var events: [Event]?
    }

    struct Event: Decodable {
        /// Absent for PUT, the enum's zero value.
        var type: String?
        var kv: KeyValue?
    }
}
