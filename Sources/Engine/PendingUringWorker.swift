import Glibc

// Stand-in for the io_uring worker, which lands from branch wt-uring (files Uring*.swift) with
// the same two entry points. Delete this file when merging that branch.
enum UringWorker {
    static func probe() -> EngineError? {
        EngineError("io_uring worker", "not built yet in this branch", code: ENOSYS)
    }

    static func run(_ setup: consuming WorkerSetup) throws(EngineError) {
        throw EngineError("io_uring worker", "not built yet in this branch", code: ENOSYS)
    }
}
