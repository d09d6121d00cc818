/// Why a subnet manager could not read the network config or take a subnet. `description` is one
/// line naming what is at fault and what fixes it, in the words of the manager's own store (an
/// etcd key and etcdctl command, a Node and kubectl command).
public struct LeaseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable, Hashable {
        /// There is no network config where the manager reads it.
        case configMissing
        /// The network config exists but is not a valid flannel network config.
        case configInvalid
        /// No subnet can be taken: all are leased, or none is assigned to this node.
        case noSubnet
        /// Other hosts kept winning the race for a free subnet.
        case contended
        /// The subnet for our PublicIP belongs to another node.
        case ownedByAnotherNode
        /// The store could not be asked, or refused to answer (unreachable, timed out, denied).
        case store
    }

    public let kind: Kind
    public let description: String
    /// What makes two failures one problem for the log: a store that is away is one problem
    /// whatever the errno text of each attempt. Defaults to `description`.
    public let problem: String

    public init(_ kind: Kind, _ description: String, problem: String? = nil) {
        self.kind = kind
        self.description = description
        self.problem = problem ?? description
    }
}
