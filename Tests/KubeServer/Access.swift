import Foundation
import NIOConcurrencyHelpers

/// An authenticated caller: the user name and groups a token maps to.
public struct User: Sendable, Equatable {
    public let name: String
    public let groups: [String]

    public init(name: String, groups: [String] = []) {
        self.name = name
        self.groups = groups
    }

    public var isAdmin: Bool { groups.contains("system:masters") }

    public static let flannel = "system:serviceaccount:kube-flannel:flannel"

    /// Who a request without credentials is, when anonymous requests are allowed (kube-apiserver's default).
    public static let anonymous = User(name: "system:anonymous", groups: ["system:unauthenticated"])
    public var isAnonymous: Bool { self == User.anonymous }
}

/// What a role may do: RBAC rules as `resource` or `resource/subresource` → verbs.
public struct Role: Sendable {
    public let rules: [String: Set<String>]

    public init(_ rules: [String: Set<String>]) { self.rules = rules }

    /// kube-flannel.yml's ClusterRole `flannel`.
    public static let flannel = Role(["pods": ["get"], "nodes": ["get", "list", "watch"], "nodes/status": ["patch"]])

    public func allows(_ verb: String, _ resource: String, subresource: String?) -> Bool {
        let name = subresource.map { "\(resource)/\($0)" } ?? resource
        return rules[name]?.contains(verb) == true || rules[name]?.contains("*") == true
    }
}

/// Bearer tokens from a file in kube-apiserver's `--token-auth-file` format, one per line:
/// `token,user,uid,"group1,group2"`. The file is read again whenever its size, inode or
/// modification time changes, so a test rotates a token by rewriting it.
public final class TokenFile: @unchecked Sendable {
    public let path: String
    private let lock = NIOLock()
    private var stamp: [Int] = []
    private var users: [String: User] = [:]

    public init(path: String) {
        self.path = path
    }

    public func user(for token: String) -> User? {
        lock.withLock {
            reloadIfChanged()
            return users[token]
        }
    }

    /// Must hold the lock.
    private func reloadIfChanged() {
        var info = stat()
        guard stat(path, &info) == 0 else {
            users = [:]
            stamp = []
            return
        }
        let current = [Int(info.st_ino), Int(info.st_size), info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
        guard current != stamp, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        stamp = current
        users = Self.parse(text)
    }

    static func parse(_ text: String) -> [String: User] {
        var users: [String: User] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: ",", maxSplits: 3, omittingEmptySubsequences: false).map {
                String($0).trimmingWhitespace()
            }
            guard fields.count >= 2, !fields[0].isEmpty, !fields[0].hasPrefix("#") else { continue }
            var groups: [String] = []
            if fields.count == 4 {
                let quoted = fields[3].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                groups = quoted.split(separator: ",").map { String($0).trimmingWhitespace() }
            }
            users[fields[0]] = User(name: fields[1], groups: groups)
        }
        return users
    }

    /// Writes a token file: the line format above, atomically (a rename), so a reader never sees half of it.
    public static func write(_ tokens: [(token: String, user: User)], to path: String) throws {
        let text = tokens.map { entry in
            let groups = entry.user.groups.isEmpty ? "" : ",\"\(entry.user.groups.joined(separator: ","))\""
            return "\(entry.token),\(entry.user.name),\(entry.user.name)\(groups)\n"
        }.joined()
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
