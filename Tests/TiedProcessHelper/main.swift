import Foundation
import Glibc
import TestThreads

// For TiedProcessTests: starts the command given as arguments through `TiedProcess` from a
// thread that has ended before the child's pid is printed, then waits to be killed. Whatever the
// test does to this process, the child must survive that thread and die with this process.

/// The command, and what starting it gave, carried to and from the short-lived thread.
final class Launch: @unchecked Sendable {
    // @unchecked: `result` is written on the thread and read only after pthread_join.
    let command: [String]
    var result: Result<TiedProcess, any Error>?
    init(_ command: [String]) { self.command = command }

    /// On the short-lived thread; a method, not a closure of top-level code, which would be the main actor's.
    func run() {
        result = Result { try TiedProcess.launch(command[0], Array(command.dropFirst()), output: .standardError) }
    }
}

let launch = Launch(Array(CommandLine.arguments.dropFirst()))
guard !launch.command.isEmpty else {
    FileHandle.standardError.write(Data("usage: weft-tied-process-helper <path> [arguments…]\n".utf8))
    exit(2)
}
var thread = pthread_t()
let created = pthread_create(
    &thread,
    nil,
    { argument in
        Unmanaged<Launch>.fromOpaque(argument!).takeRetainedValue().run()
        return nil
    },
    Unmanaged.passRetained(launch).toOpaque()
)
guard created == 0 else { exit(3) }
pthread_join(thread, nil)
switch launch.result! {
case .success(let child):
    FileHandle.standardOutput.write(Data("\(child.pid)\n".utf8))
case .failure(let error):
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(1)
}
while true { pause() }
