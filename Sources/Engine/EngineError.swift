import SystemCalls

/// A kernel call of the engine that failed: which call, on what, and the errno it returned. The
/// project's one errno error type, so a netlink failure while the engine sets up passes through as it is.
public typealias EngineError = SystemCallError
