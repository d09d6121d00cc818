import Testing

@testable import Config

#if canImport(Glibc)
import Glibc
#endif

/// The fix a refused write suggests, by errno and by whether we run as root.
@Suite struct PermissionHintTests {
    @Test func eachErrnoGetsItsOwnFix() {
        let root = AtomicFile.fix(for: EPERM, isRoot: true, attributesOf: "/run/flannel/subnet.env")
        #expect(root.contains("chattr -i -a /run/flannel/subnet.env") && !root.contains("root"), "\(root)")
        // Not root, EPERM and EACCES are permissions, which root has.
        #expect(
            AtomicFile.fix(for: EPERM, isRoot: false, attributesOf: "/x")
                == "run as root or make the directory writable"
        )
        #expect(
            AtomicFile.fix(for: EACCES, isRoot: false, attributesOf: "/x")
                == "run as root or make the directory writable"
        )
        let refusedRoot = AtomicFile.fix(for: EACCES, isRoot: true, attributesOf: "/x")
        #expect(
            refusedRoot.contains("make the directory writable") && !refusedRoot.contains("run as root"),
            "\(refusedRoot)"
        )
        #expect(AtomicFile.fix(for: EROFS, isRoot: true, attributesOf: "/x").contains("read-only"))
    }
}
