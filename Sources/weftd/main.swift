import Daemon
import Foundation

exit(
    await WeftDaemon.main(
        arguments: Array(CommandLine.arguments.dropFirst()),
        environment: ProcessInfo.processInfo.environment,
        body: WeftdRun.body
    )
)
