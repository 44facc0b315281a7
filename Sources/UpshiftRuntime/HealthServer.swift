import NIOCore
import NIOHTTP1
import NIOPosix

/// The operations endpoint: `/metrics` in Prometheus text format, `/healthz` while the process
/// is alive, `/readyz` once the processor holds a restored assignment. It runs on its own
/// SwiftNIO event loop, so a busy or blocked processor thread never delays a probe.
public final class HealthServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// The port actually bound (useful when asked for port 0).
    public let port: Int

    /// Binds `host:port` and starts serving.
    ///
    /// - Throws: the bind error, for example when the port is taken.
    public init(
        host: String = "0.0.0.0", port: Int,
        metrics: @escaping @Sendable () -> [UInt8],
        isReady: @escaping @Sendable () -> Bool
    ) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Responder(metrics: metrics, isReady: isReady))
                }
            }
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        self.port = channel.localAddress?.port ?? port
    }

    /// Stops accepting connections and releases the event loop.
    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    /// Answers each request on the connection it came in on; one response per request.
    private final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let metrics: @Sendable () -> [UInt8]
        let isReady: @Sendable () -> Bool

        init(metrics: @escaping @Sendable () -> [UInt8], isReady: @escaping @Sendable () -> Bool) {
            self.metrics = metrics
            self.isReady = isReady
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let request) = unwrapInboundIn(data) else { return }
            let (status, type, body) = respond(to: request)
            var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", String(body.count))])
            if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !request.isKeepAlive {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                written.whenComplete { _ in bound.value.close(promise: nil) }
            }
        }

        private func respond(to request: HTTPRequestHead) -> (HTTPResponseStatus, String, [UInt8]) {
            let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
            guard request.method == .GET || request.method == .HEAD else {
                return (.methodNotAllowed, "text/plain", Array("GET only\n".utf8))
            }
            switch path {
            case "/metrics":
                return (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics())
            case "/healthz":
                return (.ok, "text/plain", Array("ok\n".utf8))
            case "/readyz":
                return isReady()
                    ? (.ok, "text/plain", Array("ready\n".utf8))
                    : (.serviceUnavailable, "text/plain", Array("not ready: joining the group or restoring state\n".utf8))
            default:
                return (.notFound, "text/plain", Array("not found: try /metrics, /healthz or /readyz\n".utf8))
            }
        }
    }
}
