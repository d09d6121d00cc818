import SystemCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The module's only I/O: reading a kubeconfig, token, CA, certificate or namespace file whole.
/// Errors read as Go's do ("open /path: no such file or directory") because those are the texts
/// users search for.
enum FileContents {
    /// Far above any kubeconfig or PEM bundle; a larger file is a wrong path, not a config.
    static let maximumSize = 16 << 20

    static func load(_ path: String) throws(KubeError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open", path, errno) }
        defer { close(descriptor) }
        let bytes: [UInt8]?
        do throws(SystemCallError) {
            bytes = try SystemCall.readAll(descriptor, limit: maximumSize, chunkSize: 64 << 10)
        } catch {
            throw failure("read", path, error.code)
        }
        guard let bytes else {
            throw KubeError(
                .file,
                "read \(path): larger than \(maximumSize >> 20) MiB",
                fix: "check the path: it should name a kubeconfig, token or PEM file"
            )
        }
        return bytes
    }

    private static func failure(_ operation: String, _ path: String, _ code: Int32) -> KubeError {
        // glibc capitalises its messages; Go's syscall table does not.
        var message = String(cString: strerror(code))
        if let first = message.first { message = first.lowercased() + message.dropFirst() }
        return KubeError(.file, "\(operation) \(path): \(message)")
    }
}

/// Joins a possibly relative path to a directory, as client-go's ResolvePaths does for the file
/// names inside a kubeconfig.
func resolve(_ path: String, against directory: String) -> String {
    if path.isEmpty || path.hasPrefix("/") { return path }
    if directory.isEmpty { return path }
    return directory.hasSuffix("/") ? directory + path : directory + "/" + path
}

func directoryOf(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let directory = String(path[..<slash])
    return directory.isEmpty ? "/" : directory
}
