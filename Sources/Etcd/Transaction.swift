/// One condition of a transaction; all must hold for the success branch to run.
public struct Compare: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value(String)
    }

    public var key: String
    public var target: Target

    public init(key: String, target: Target) {
        self.key = key
        self.target = target
    }

    /// True when the key does not exist (its version is 0): create-if-absent.
    public static func absent(_ key: String) -> Compare { Compare(key: key, target: .version(0)) }
    public static func version(_ key: String, equals version: Int64) -> Compare {
        Compare(key: key, target: .version(version))
    }
    public static func value(_ key: String, equals value: String) -> Compare {
        Compare(key: key, target: .value(value))
    }
    public static func modRevision(_ key: String, equals revision: Int64) -> Compare {
        Compare(key: key, target: .modRevision(revision))
    }

    var wire: Wire.Compare {
        var compare = Wire.Compare(key: GatewayBytes(key), target: "", result: "EQUAL")
        switch target {
        case .version(let version):
            compare.target = "VERSION"
            compare.version = GatewayInt64(version)
        case .createRevision(let revision):
            compare.target = "CREATE"
            compare.create_revision = GatewayInt64(revision)
        case .modRevision(let revision):
            compare.target = "MOD"
            compare.mod_revision = GatewayInt64(revision)
        case .value(let value):
            compare.target = "VALUE"
            compare.value = GatewayBytes(value)
        }
        return compare
    }
}

/// One operation in a transaction branch.
public enum TransactionOperation: Sendable, Equatable {
    case put(key: String, value: String, lease: LeaseID?)
    case delete(key: String)
    case get(key: String)
    case range(prefix: String)

    var wire: Wire.RequestOp {
        switch self {
        case .put(let key, let value, let lease):
            Wire.RequestOp(
                request_put: Wire.PutRequest(
                    key: GatewayBytes(key),
                    value: GatewayBytes(value),
                    lease: lease.map { GatewayInt64($0.value) }
                )
            )
        case .delete(let key):
            Wire.RequestOp(request_delete_range: Wire.DeleteRangeRequest(key: GatewayBytes(key)))
        case .get(let key):
            Wire.RequestOp(request_range: Wire.RangeRequest(key: GatewayBytes(key)))
        case .range(let prefix):
            Wire.RequestOp(
                request_range: Wire.RangeRequest(
                    key: GatewayBytes(prefix),
                    range_end: GatewayBytes(prefixRangeEnd(Array(prefix.utf8)))
                )
            )
        }
    }
}

/// The answer of one operation of the branch that ran, in order.
public enum TransactionResponse: Sendable, Equatable {
    case put
    case delete(deleted: Int64)
    case range(RangeResult)
}

public struct TransactionResult: Sendable, Equatable {
    /// Whether every compare held (and so the success branch ran).
    public var succeeded: Bool
    /// The store's revision after the transaction.
    public var revision: Int64
    public var responses: [TransactionResponse]
}
