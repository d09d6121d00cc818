import CNI
import Foundation

let output = await Plugin.run(environment: ProcessInfo.processInfo.environment) {
    [UInt8](FileHandle.standardInput.readDataToEndOfFile())
}
FileHandle.standardOutput.write(Data(output.stdout))
FileHandle.standardError.write(Data(output.stderr.utf8))
exit(output.status)
