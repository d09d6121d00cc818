import Addressing
import ConfigTestSupport
import Foundation
import Testing

@testable import Config

#if canImport(Glibc)
import Glibc
#endif

func permissions(_ path: String) -> UInt32 {
    var status = stat()
    guard lstat(path, &status) == 0 else { return 0xFFFF_FFFF }
    return UInt32(status.st_mode & 0o7777)
}

// umask is per process: these tests run one at a time and restore it at once.
@Suite(.serialized) struct AtomicFileWrites {
    let env = SubnetEnv(
        network: IPv4Prefix("10.244.0.0/16"),
        subnet: IPv4Prefix("10.244.34.0/24"),
        mtu: 1450,
        ipMasq: false
    )

    @Test func modesIgnoreTheUmaskAndParentsAreCreated() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let path = "\(root)/run/flannel/subnet.env"
        let old = umask(0o077)
        defer { umask(old) }
        try env.write(to: path)
        umask(old)
        #expect(permissions(path) == 0o644)
        #expect(permissions("\(root)/run/flannel") == 0o755)
        #expect(permissions("\(root)/run") == 0o755)
        #expect(
            contents(path)
                == "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        )
    }

    @Test func replacesAnExistingFileAndLeavesNoTemporaryBehind() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let path = "\(root)/subnet.env"
        _ = FileManager.default.createFile(
            atPath: path,
            contents: Data("OLD=1\n".utf8),
            attributes: [.posixPermissions: 0o600]
        )
        try env.write(to: path)
        #expect(permissions(path) == 0o644)
        #expect(contents(path) == env.text)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["subnet.env"])
    }

    @Test func existingDirectoriesKeepTheirMode() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let directory = "\(root)/private"
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: false,
            attributes: [.posixPermissions: 0o700]
        )
        try AtomicFile.write("x\n", to: "\(directory)/file")
        #expect(permissions(directory) == 0o700)
        #expect(permissions("\(directory)/file") == 0o644)
    }

    @Test func refusesToWriteThroughASymlink() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let target = "\(root)/elsewhere"
        _ = FileManager.default.createFile(atPath: target, contents: Data("KEEP\n".utf8))
        let link = "\(root)/subnet.env"
        #expect(symlink(target, link) == 0)
        do {
            try env.write(to: link)
            Issue.record("wrote through a symlink")
        } catch {
            expectOneLine(error, field: "path", mentions: [link, "symbolic link"])
        }
        #expect(contents(target) == "KEEP\n")
        var status = stat()
        #expect(lstat(link, &status) == 0 && status.st_mode & S_IFMT == S_IFLNK)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).sorted() == ["elsewhere", "subnet.env"])
    }

    @Test func refusesADirectoryOrAFileInThePath() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        try FileManager.default.createDirectory(atPath: "\(root)/subnet.env", withIntermediateDirectories: false)
        #expect(throws: ConfigError.self) { try AtomicFile.write("x", to: "\(root)/subnet.env") }
        _ = FileManager.default.createFile(atPath: "\(root)/plain", contents: Data())
        do {
            try AtomicFile.write("x", to: "\(root)/plain/sub/file")
            Issue.record("created a directory under a file")
        } catch {
            expectOneLine(error, field: "directory", mentions: ["\(root)/plain", "not a directory"])
        }
        #expect(throws: ConfigError.self) { try AtomicFile.write("x", to: "\(root)/") }
        #expect(throws: ConfigError.self) { try AtomicFile.write("x", to: "") }
    }

    @Test func readingAMissingFileIsNil() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        #expect(try SubnetEnv.read(path: "\(root)/absent.env") == nil)
        #expect(try SubnetEnv.read(path: "\(root)/no/such/dir/subnet.env") == nil)
        #expect(try SubnetEnv.readEntries(path: "\(root)/absent.env") == nil)
    }

    @Test func readsBackWhatItWrote() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let path = "\(root)/subnet.env"
        try env.write(to: path)
        #expect(try SubnetEnv.read(path: path) == env)
    }

    @Test func unreadableOrGarbledFilesAreErrorsNamingTheFile() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        // A directory opens but cannot be read (EISDIR), even for root.
        do {
            _ = try SubnetEnv.read(path: root)
            Issue.record("read a directory")
        } catch {
            expectOneLine(error, field: "file", mentions: [root, "errno"])
        }
        let garbled = "\(root)/garbled.env"
        _ = FileManager.default.createFile(atPath: garbled, contents: Data("FLANNEL_MTU=1450\n<<<>>>\n".utf8))
        do {
            _ = try SubnetEnv.read(path: garbled)
            Issue.record("read a garbled file")
        } catch {
            expectOneLine(error, field: "line", mentions: ["\(garbled) line 2"])
        }
        let binary = "\(root)/binary.env"
        _ = FileManager.default.createFile(atPath: binary, contents: Data([0x46, 0xFF, 0xFE, 0x0A]))
        do {
            _ = try SubnetEnv.read(path: binary)
            Issue.record("read a non-UTF-8 file")
        } catch {
            expectOneLine(error, field: "file", mentions: [binary, "UTF-8"])
        }
    }

    @Test func dockerOptionsFileFromASubnetFile() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let subnetFile = "\(root)/subnet.env"
        _ = FileManager.default.createFile(atPath: subnetFile, contents: Data(sampleSubnetEnv.utf8))
        let output = "\(root)/docker/docker_opts.env"
        try DockerOptions(form: .combined).write(from: subnetFile, to: output)
        #expect(contents(output) == "DOCKER_OPTS=\" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472\"\n")
        #expect(permissions(output) == 0o644)
        // A missing subnet file gives empty options, as the script does.
        try DockerOptions(form: .combined).write(from: "\(root)/absent", to: output)
        #expect(contents(output) == "DOCKER_OPTS=\"\"\n")
    }
}
