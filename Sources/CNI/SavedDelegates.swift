import Config
import Glibc

/// dataDir/<container ID>: the delegate config ADD rendered, kept so DEL and CHECK hand the
/// delegate exactly what ADD did even after subnet.env or the conflist changed. The directory is
/// 0700 and the files 0600 (they are the container's network settings); a file is written to a
/// temporary name, fsynced and renamed, so a crash leaves the old file or the new one.
struct SavedDelegates {
    let directory: String

    func path(_ containerID: String) -> String { "\(directory)/\(containerID)" }

    func save(_ config: [UInt8], containerID: String) throws(CNIError) {
        try createDirectory()
        do {
            try AtomicFile.write(String(decoding: config, as: UTF8.self), to: path(containerID), mode: 0o600)
        } catch {
            throw CNIError(.ioFailure, "failed to save the delegate config: \(error)")
        }
    }

    /// The saved bytes, or nil when there are none for this container.
    func load(containerID: String) throws(CNIError) -> [UInt8]? {
        do {
            return try AtomicFile.read(path(containerID))
        } catch {
            throw CNIError(.ioFailure, "failed to read the saved delegate config: \(error)")
        }
    }

    /// Best effort, as in flannel: the delegate's DEL already succeeded, and a file left behind
    /// only costs a later DEL the same call again.
    func remove(containerID: String) {
        unlink(path(containerID))
    }

    /// mkdir -p with 0700 for every directory it creates, whatever the umask.
    private func createDirectory() throws(CNIError) {
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            prefix += "/\(component)"
            if mkdir(prefix, 0o700) == 0 {
                chmod(prefix, 0o700)
                continue
            }
            let code = errno
            var status = stat()
            guard code == EEXIST, stat(prefix, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw CNIError(
                    .ioFailure,
                    "failed to create dataDir \(directory): \(prefix): \(String(cString: strerror(code == EEXIST ? ENOTDIR : code)))",
                    details: "run as root, or set dataDir to a writable directory"
                )
            }
        }
    }
}
