import Foundation
import Testing
import UpshiftCore
import UpshiftRuntime
import Yams

/// Docker does not run here, so `deploy/` is checked statically.
@Suite("Deployment files")
struct DeployTests {
    let deploy = repository.appendingPathComponent("deploy")

    func yaml(_ path: String) throws -> Node {
        try #require(try Yams.compose(yaml: String(contentsOf: deploy.appendingPathComponent(path), encoding: .utf8)))
    }

    func run(_ command: [String]) throws -> String {
        try UpshiftRuntimeTests.run(URL(fileURLWithPath: "/usr/bin/env"), command, errors: false).output
    }

    @Test func everyYAMLFileParses() throws {
        let files = FileManager.default.enumerator(atPath: deploy.path)!.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        #expect(files.count >= 10)
        for file in files {
            let documents = Array(try Yams.compose_all(yaml: String(contentsOf: deploy.appendingPathComponent(file), encoding: .utf8)))
            #expect(!documents.isEmpty, "\(file) holds a document")
        }
    }

    @Test func theTopicStepCreatesEveryTopicTheConfigurationNamesWithTheRightLayout() throws {
        let configuration = try ConfigurationFile.load(
            String(contentsOf: deploy.appendingPathComponent("config/upshift.yaml"), encoding: .utf8),
            file: deploy.appendingPathComponent("config/upshift.yaml").path, environment: [:]).runtime
        let compose = try yaml("docker-compose.yml")
        let script = try #require(compose["services"]?["topics"]?["command"]?.sequence?.first?.string)
        var created: [String: (partitions: Int, compacted: Bool)] = [:]
        for line in script.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("create --topic") {
            let words = line.split(separator: " ").map(String.init)
            let name = words[words.firstIndex(of: "--topic")! + 1]
            let partitions = Int(words[words.firstIndex(of: "--partitions")! + 1])!
            created[name] = (partitions, line.contains("cleanup.policy=compact"))
        }
        let named = configuration.inputTopics + configuration.topics.all
        #expect(Set(named).subtracting(created.keys).isEmpty, "created: \(created.keys.sorted())")
        let changelog = try #require(created[configuration.topics.changelog])
        #expect(changelog.compacted)
        for input in configuration.inputTopics {
            #expect(created[input]?.partitions == changelog.partitions, "\(input) and the changelog are co-partitioned")
            #expect(created[input]?.compacted == false)
        }
        #expect(compose["services"]?["upshift"]?["environment"]?["UPSHIFT_BOOTSTRAP_SERVERS"]?.string == "kafka:9092")
    }

    @Test func theImageInstallsTheLibrariesTheBinaryLinks() throws {
        let dockerfile = try String(contentsOf: deploy.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let stages = dockerfile.components(separatedBy: "\nFROM ")
        #expect(stages.count == 3, "a build stage and a runtime stage")
        let runtime = try #require(stages.last)
        #expect(runtime.hasPrefix("debian:bookworm-slim"))
        #expect(runtime.contains("USER 10001") && runtime.contains("useradd --system --uid 10001"))
        let installLine = try #require(runtime.components(separatedBy: "\n").first { $0.contains("apt-get install") })
        let installed = Set(installLine.split(separator: " ").map(String.init).filter { !$0.hasPrefix("-") && !["&&", "\\", "apt-get", "install"].contains($0) })
        // debian:bookworm-slim ships these; the Swift runtime is linked in (--static-swift-stdlib).
        let base: Set<String> = ["libc6", "libgcc-s1", "libstdc++6"]
        let swiftRuntime = ["libswift", "libFoundation", "lib_Foundation", "libdispatch", "libBlocksRuntime", "libTesting", "libXCTest"]

        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let executable = try #require(
            sequence(first: binary) { $0.path == "/" ? nil : $0.deletingLastPathComponent() }
                .map { $0.appendingPathComponent("upshift") }
                .first { FileManager.default.isExecutableFile(atPath: $0.path) })
        let needed = try run(["readelf", "-d", executable.path]).split(separator: "\n")
            .compactMap { line -> String? in
                guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { return nil }
                return String(line[line.index(after: open)..<close])
            }
            .filter { library in !swiftRuntime.contains { library.hasPrefix($0) } }
        #expect(needed.contains("librdkafka.so.1"))
        let paths = Dictionary(try run(["ldd", executable.path]).split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: " ")
            guard parts.count >= 3, parts[1] == "=>" else { return nil }
            return (String(parts[0].trimmingCharacters(in: .whitespaces)), String(parts[2]))
        }, uniquingKeysWith: { first, _ in first })
        for library in needed where library.hasPrefix("lib") {
            let path = try #require(paths[library], "ldd resolves \(library)")
            // Debian registers a library under /lib or /usr/lib, whichever its package used.
            let candidates = [path, path.hasPrefix("/usr/") ? String(path.dropFirst(4)) : "/usr" + path]
            let owner = try candidates.lazy.map { try self.run(["dpkg", "-S", $0]) }.first { !$0.isEmpty }?
                .split(separator: ":").first.map(String.init) ?? "no package"
            #expect(base.contains(owner) || installed.contains(owner), "\(library) comes from \(owner), which the runtime stage does not install: \(installed.sorted())")
        }
    }

    @Test func kubernetesProbesIdentityAndGraceMatchTheConfiguration() throws {
        let configMap = try yaml("kubernetes/configmap.yaml")
        let file = try ConfigurationFile.load(
            try #require(configMap["data"]?["upshift.yaml"]?.string), file: "/etc/upshift/config/upshift.yaml", environment: ["HOSTNAME": "upshift-abc"])
        #expect(file.runtime.staticMembership)

        let deployment = try yaml("kubernetes/deployment.yaml")
        let pod = try #require(deployment["spec"]?["template"]?["spec"])
        let container = try #require(pod["containers"]?.sequence?.first)
        #expect(container["ports"]?.sequence?.first?["containerPort"]?.int == file.httpPort)
        #expect(container["livenessProbe"]?["httpGet"]?["path"]?.string == "/healthz")
        #expect(container["readinessProbe"]?["httpGet"]?["path"]?.string == "/readyz")
        #expect(container["resources"]?["requests"]?["memory"] != nil)
        let identity = container["env"]?.sequence?.first { $0["name"]?.string == "UPSHIFT_INSTANCE_ID" }
        #expect(identity?["valueFrom"]?["fieldRef"]?["fieldPath"]?.string == "metadata.name")
        let grace = try #require(pod["terminationGracePeriodSeconds"]?.int)
        #expect(Duration.seconds(grace) > file.runtime.shutdownTimeout + .seconds(15))
        #expect(pod["volumes"]?.sequence?.first?["configMap"]?["name"]?.string == configMap["metadata"]?["name"]?.string)

        let labels = deployment["spec"]?["selector"]?["matchLabels"]
        #expect(try yaml("kubernetes/service.yaml")["spec"]?["selector"] == labels)
        #expect(try yaml("kubernetes/pdb.yaml")["spec"]?["selector"]?["matchLabels"] == labels)
    }
}
