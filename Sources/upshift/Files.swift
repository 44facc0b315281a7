import ArgumentParser
import Foundation
import UpshiftCore
import UpshiftRuntime

/// Reads a text file, or fails the command with the path and the reason.
func readText(_ path: String) throws -> String {
    guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("cannot read \(path): no such file") }
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw ValidationError("cannot read \(path): \((error as NSError).localizedDescription)")
    }
}

/// Loads workflow files into one program, printing every diagnostic and failing with exit code 1.
/// A directory stands for the YAML files directly in it (not those in its subdirectories, where
/// scenarios live).
func loadProgram(_ paths: [String]) throws -> Program {
    let files = try paths.flatMap(workflowFiles).map { (name: $0, text: try readText($0)) }
    do {
        return try ProgramLoader.load(files)
    } catch {
        for diagnostic in error.diagnostics { printError(diagnostic.description) }
        throw ExitCode(1)
    }
}

/// The path itself, or for a directory the `.yaml` and `.yml` files directly in it, by name.
private func workflowFiles(_ path: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
    let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
    guard !names.isEmpty else { throw ValidationError("no workflow files (.yaml) in \(path)") }
    return names.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
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
