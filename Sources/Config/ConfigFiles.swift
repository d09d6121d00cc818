import SystemCalls

// The only file in Config that makes system calls: reading and atomically writing the small
// files flannel's neighbours (CNI plugin, Docker) read. Everything else here is pure.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum AtomicFile {
    /// Writes `contents` so a reader sees either the old file or the whole new one: a temporary
    /// file in the same directory, fsync, rename over the target, fsync the directory. The mode
    /// is set with fchmod, so the umask does not apply; missing parent directories are created
    /// 0755. A symbolic link at `path` is refused rather than replaced or followed.
    public static func write(_ contents: String, to path: String, mode: UInt32 = 0o644) throws(ConfigError) {
        try write(bytes: Array(contents.utf8), to: path, mode: mode)
    }

    /// `write` for any bytes: a CNI plugin binary as well as a config file.
    public static func write(bytes: [UInt8], to path: String, mode: UInt32 = 0o644) throws(ConfigError) {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw ConfigError(
                source: path.isEmpty ? "file" : path,
                field: "path",
                problem: "\(ConfigError.show(path)) is not a file path; give a path like /run/flannel/subnet.env"
            )
        }
        let (directory, base) = split(path)
        try createDirectories(directory)

        var status = stat()
        if lstat(path, &status) == 0 {
            switch status.st_mode & S_IFMT {
            case S_IFLNK:
                throw ConfigError(
                    source: path,
                    field: "path",
                    problem:
                        "the path is a symbolic link; Weft will not write through it: remove the link or choose another path"
                )
            case S_IFDIR:
                throw ConfigError(
                    source: path,
                    field: "path",
                    problem: "the path is a directory; remove it or choose another path"
                )
            default: break
            }
        } else if errno != ENOENT {
            throw failure("inspect the path", path, field: "path")
        }

        let temporary = "\(directory)/.\(base).tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw failure("create the temporary file", temporary, attributesOf: directory) }
        var closed = false
        do throws(ConfigError) {
            try writeAll(bytes, to: fd, path: temporary)
            guard fchmod(fd, mode_t(mode)) == 0 else { throw failure("set the mode of the temporary file", temporary) }
            guard fsync(fd) == 0 else { throw failure("flush the temporary file", temporary) }
            closed = true
            guard close(fd) == 0 else { throw failure("close the temporary file", temporary) }
            guard rename(temporary, path) == 0 else {
                let code = errno
                throw failure(
                    "rename the temporary file \(temporary) over the file",
                    path,
                    code: code,
                    attributesOf: code == EPERM ? attributeHolder(path, directory: directory) : nil
                )
            }
        } catch {
            if !closed { close(fd) }
            unlink(temporary)
            throw error
        }
        // Makes the rename itself durable; the file is already in place if this fails.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Puts a copy of `source` at `destination` as `write` does, so whoever reads the destination
    /// (a runtime running the CNI plugin, loading the conflist) never sees half a file; flannel's
    /// install-conf does the same with `.<name>.tmp`.
    public static func install(_ source: String, to destination: String, mode: UInt32) throws(ConfigError) {
        guard let bytes = try read(source, limit: installLimit) else {
            throw ConfigError(
                source: source,
                field: "path",
                problem:
                    "no such file to install; check the path (in the image: /opt/bin/weft-cni, or the ConfigMap's mount)"
            )
        }
        try write(bytes: bytes, to: destination, mode: mode)
    }

    /// A release weft-cni is a few megabytes; this only stops a wrong path from filling memory.
    static let installLimit = 256 << 20

    /// The file's bytes, or nil when it does not exist. Files over `limit` are refused: the files
    /// read here are a few lines long.
    public static func read(_ path: String, limit: Int = 1 << 20) throws(ConfigError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw failure("open the file", path)
        }
        defer { close(fd) }
        let bytes: [UInt8]?
        do {
            bytes = try SystemCall.readAll(fd, limit: limit, chunkSize: 4096)
        } catch {
            throw failure("read the file", path, code: error.code)
        }
        guard let bytes else {
            throw ConfigError(
                source: path,
                field: "file",
                problem:
                    "the file is larger than \(limit) bytes, which no file Weft reads or installs is; check the path"
            )
        }
        return bytes
    }

    static func split(_ path: String) -> (directory: String, base: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    /// mkdir -p, each new directory 0755 whatever the umask.
    static func createDirectories(_ directory: String) throws(ConfigError) {
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            prefix += "/\(component)"
            var status = stat()
            if stat(prefix, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFDIR else {
                    throw ConfigError(
                        source: prefix,
                        field: "directory",
                        problem:
                            "the path is not a directory, so \(directory) cannot be created; remove it or choose another path"
                    )
                }
                continue
            }
            guard errno == ENOENT else { throw failure("inspect the directory", prefix, field: "directory") }
            if mkdir(prefix, 0o755) != 0 {
                if errno == EEXIST { continue }
                throw failure("create the directory", prefix, field: "directory")
            }
            guard chmod(prefix, 0o755) == 0 else {
                throw failure("set the mode of the directory", prefix, field: "directory")
            }
        }
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws(ConfigError) {
        do {
            try SystemCall.writeAll(fd, bytes)
        } catch {
            throw failure("write the temporary file", path, code: error.code)
        }
    }

    /// One line naming the call, the path, the system's reason and what to do about it.
    /// `attributesOf` is where an immutable or append-only attribute would stop the call: the
    /// file for a rename over it (the default), the directory for a file created in it.
    static func failure(
        _ operation: String,
        _ path: String,
        field: String = "file",
        code: Int32? = nil,
        attributesOf: String? = nil
    ) -> ConfigError {
        let code = code ?? errno
        let reason = String(cString: strerror(code))
        let fix = fix(for: code, isRoot: geteuid() == 0, attributesOf: attributesOf ?? path)
        return ConfigError(
            source: path,
            field: field,
            problem: "cannot \(operation): \(reason) (errno \(code)); \(fix)"
        )
    }

    /// Which of `path` and its directory refused a rename over `path` with EPERM: an immutable or
    /// append-only file cannot be opened for writing, even by root (nothing is written here);
    /// otherwise the directory holds the attribute.
    static func attributeHolder(_ path: String, directory: String) -> String {
        let fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return path }
        close(fd)
        return directory
    }

    static func fix(for code: Int32, isRoot: Bool, attributesOf path: String) -> String {
        switch code {
        // For root, EPERM on these calls is chattr's +i or +a, which stop even root.
        case EPERM where isRoot:
            "\(path) is immutable or append-only (lsattr -d \(path) shows i or a); clear it with chattr -i -a \(path)"
        case EACCES where isRoot:
            "make the directory writable (root is refused here: CAP_DAC_OVERRIDE withheld, or a security module)"
        case EACCES, EPERM: "run as root or make the directory writable"
        case EROFS: "the filesystem is read-only; choose a path on a writable one"
        case ENOSPC, EDQUOT: "free some space on that filesystem"
        case ENOTDIR: "a parent of the path is not a directory; fix the path"
        default: "check the path and its parent directory"
        }
    }
}

extension SubnetEnv {
    /// The previous subnet.env, or nil when there is none yet (a first start).
    public static func read(path: String = defaultPath) throws(ConfigError) -> SubnetEnv? {
        guard let text = try readText(path) else { return nil }
        return try parse(text, file: path)
    }

    /// Every variable of an env file (for DockerOptions), or nil when there is no file; the
    /// script skips a missing file the same way.
    public static func readEntries(path: String = defaultPath) throws(ConfigError) -> [String: String]? {
        guard let text = try readText(path) else { return nil }
        return try parseEntries(text, file: path)
    }

    public func write(to path: String = SubnetEnv.defaultPath) throws(ConfigError) {
        try AtomicFile.write(text, to: path)
    }

    private static func readText(_ path: String) throws(ConfigError) -> String? {
        guard let bytes = try AtomicFile.read(path) else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(
                source: path,
                field: "file",
                problem: "the file is not UTF-8 text; delete it and let weft write it afresh"
            )
        }
        return text
    }
}

extension DockerOptions {
    /// Renders from the env file at `subnetFile` (a missing file gives no options, as in the
    /// script) and writes the result atomically to `path`.
    public func write(
        from subnetFile: String = SubnetEnv.defaultPath,
        to path: String = defaultPath,
        inherited: String = ""
    ) throws(ConfigError) {
        let entries = try SubnetEnv.readEntries(path: subnetFile) ?? [:]
        try AtomicFile.write(render(entries: entries, inherited: inherited), to: path)
    }
}
