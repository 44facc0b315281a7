import ArgumentParser
import Foundation
import UpshiftCore
import UpshiftRuntime

/// Reads a text file, or fails the command with the path and the reason.
func readText(_ path: String) throws -> String {
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw ValidationError("cannot read \(path): \((error as NSError).localizedDescription)")
    }
}

/// Loads workflow files into one program, printing every diagnostic and failing with exit code 1.
func loadProgram(_ paths: [String]) throws -> Program {
    let files = try paths.map { (name: $0, text: try readText($0)) }
    do {
        return try ProgramLoader.load(files)
    } catch {
        for diagnostic in error.diagnostics { printError(diagnostic.description) }
        throw ExitCode(1)
    }
}

/// Loads `upshift run`'s configuration with the process environment, printing every diagnostic
/// and failing with exit code 1.
func loadConfiguration(_ path: String) throws -> ConfigurationFile {
    do {
        return try ConfigurationFile.load(try readText(path), file: path, environment: ProcessInfo.processInfo.environment)
    } catch let error as DiagnosticsError {
        for diagnostic in error.diagnostics { printError(diagnostic.description) }
        throw ExitCode(1)
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
