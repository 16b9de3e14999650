import DinoHub
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A model repository held in memory by the test server.
struct TestRepository: Sendable {
    /// `org/name`.
    var id: String
    /// Branches and tags: name -> commit.
    var refs: [String: String]
    /// Commit -> files (path -> content).
    var commits: [String: [String: [UInt8]]]

    /// Files the hub keeps in LFS (served through a redirect to the CDN path).
    static func isLFS(_ file: String) -> Bool { file.hasSuffix(".safetensors") }
}

/// One request as the server received it.
struct RecordedRequest: Sendable {
    var method: String
    var path: String
    /// Header names lowercased.
    var headers: [String: String]
}

/// Where the `Location` of an LFS file's redirect points.
enum LocationStyle: Sendable {
    case relative
    case absolute
}

/// Switches that make the server misbehave the ways the client must handle.
struct ServerBehaviour: Sendable {
    /// File -> (bytes sent before the connection is closed, number of GETs cut that way).
    var interruptions: [String: (afterBytes: Int, times: Int)] = [:]
    /// Files whose content is served with one byte flipped (same length).
    var corrupt: Set<String> = []
    /// Answer `200` with the whole file even when a `Range` is asked for.
    var ignoreRange = false
    /// When set, `resolve` requests without `Authorization: Bearer {token}` get `401`.
    var requiredToken: String?
    /// Where LFS redirects point.
    var locationStyle: LocationStyle = .relative
    /// When set, a GET of `/cdn/...` on `127.0.0.1` is redirected to this host (same port),
    /// to check that credentials do not follow a redirect to another host.
    var cdnRedirectHost: String?
}

/// A local endpoint that refuses every connection: its port is bound, so no other test can
/// take it, but not listening, so the kernel answers connections with a reset.
final class RefusingEndpoint {
    let url: URL
    private let socketDescriptor: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestHubServer.ServerError.socket("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, let url = URL(string: "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))") else {
            close(fd)
            throw TestHubServer.ServerError.socket("bind: \(errno)")
        }
        socketDescriptor = fd
        self.url = url
    }

    deinit { close(socketDescriptor) }
}

/// A minimal HTTP/1.1 server mimicking the hub's `resolve` endpoint and its LFS CDN, on
/// 127.0.0.1 with a kernel-chosen port, one connection at a time, `Connection: close`.
final class TestHubServer: Sendable {
    let port: UInt16
    private let listener: Int32
    private let repositories: [TestRepository]
    private let state: Mutex<State>
    private let stopped = DispatchSemaphore(value: 0)

    private struct State {
        var behaviour: ServerBehaviour
        var requests: [RecordedRequest] = []
        var getCounts: [String: Int] = [:]
        var isStopping = false
    }

    /// The endpoint to give the client.
    let endpoint: URL

    init(repositories: [TestRepository], behaviour: ServerBehaviour = ServerBehaviour()) throws {
        self.repositories = repositories
        state = Mutex(State(behaviour: behaviour))
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerError.socket("socket: \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw ServerError.socket("bind/listen: \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        guard let endpoint = URL(string: "http://127.0.0.1:\(port)") else { throw ServerError.socket("no URL for port \(port)") }
        self.endpoint = endpoint
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Stops accepting and waits for the server thread to end.
    func stop() {
        let alreadyStopping = state.withLock { state in
            defer { state.isStopping = true }
            return state.isStopping
        }
        guard !alreadyStopping else { return }
        // Wakes the thread blocked in accept().
        shutdown(listener, Int32(SHUT_RDWR))
        stopped.wait()
        close(listener)
    }

    var requests: [RecordedRequest] { state.withLock { $0.requests } }

    func setBehaviour(_ change: (inout ServerBehaviour) -> Void) {
        state.withLock { change(&$0.behaviour) }
    }

    // MARK: Serving

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                break
            }
            handle(client)
            close(client)
        }
        stopped.signal()
    }

    private func handle(_ fd: Int32) {
        guard let request = readRequest(fd) else { return }
        let behaviour = state.withLock { state in
            state.requests.append(request)
            return state.behaviour
        }
        let path = request.path
        if path.hasPrefix("/cdn/") {
            serveCDN(fd, request: request, sha: String(path.dropFirst(5)), behaviour: behaviour)
            return
        }
        let parts = path.split(separator: "/", maxSplits: 4, omittingEmptySubsequences: false)
        // "", org, name, "resolve", "rev/file..."
        guard parts.count == 5, parts[3] == "resolve",
              let slash = parts[4].firstIndex(of: "/") else {
            respond(fd, status: 404, headers: [:], body: [], method: request.method)
            return
        }
        let repoID = "\(parts[1])/\(parts[2])"
        let revision = String(parts[4][..<slash]).removingPercentEncoding ?? ""
        let file = String(parts[4][parts[4].index(after: slash)...]).removingPercentEncoding ?? ""

        if let token = behaviour.requiredToken, request.headers["authorization"] != "Bearer \(token)" {
            respond(fd, status: 401, headers: ["X-Error-Code": "GatedRepo"], body: [], method: request.method)
            return
        }
        guard let repository = repositories.first(where: { $0.id == repoID }) else {
            respond(fd, status: 404, headers: ["X-Error-Code": "RepoNotFound"], body: [], method: request.method)
            return
        }
        guard let commit = repository.commits[revision] != nil ? revision : repository.refs[revision],
              let files = repository.commits[commit] else {
            respond(fd, status: 404, headers: ["X-Error-Code": "RevisionNotFound"], body: [], method: request.method)
            return
        }
        guard let content = files[file] else {
            respond(fd, status: 404, headers: ["X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit],
                    body: [], method: request.method)
            return
        }
        if TestRepository.isLFS(file) {
            let sha = SHA256Hasher.hex(of: content)
            let location = behaviour.locationStyle == .absolute ? "http://127.0.0.1:\(port)/cdn/\(sha)" : "/cdn/\(sha)"
            // As on the hub: the redirect itself carries the file's metadata, and its own
            // ETag and Content-Length are those of the redirect, not of the file.
            respond(fd, status: 302, headers: [
                "Location": location, "X-Repo-Commit": commit, "X-Linked-Etag": "\"\(sha)\"",
                "X-Linked-Size": "\(content.count)", "ETag": "W/\"redirect-0\"",
            ], body: Array("Found. Redirecting".utf8), method: request.method)
            return
        }
        serveContent(fd, request: request, file: file, content: content, behaviour: behaviour,
                     headers: ["ETag": "\"\(Self.gitBlobID(content))\"", "X-Repo-Commit": commit])
    }

    private func serveCDN(_ fd: Int32, request: RecordedRequest, sha: String, behaviour: ServerBehaviour) {
        if let host = behaviour.cdnRedirectHost, request.headers["host"]?.hasPrefix("127.0.0.1") == true {
            respond(fd, status: 302, headers: ["Location": "http://\(host):\(port)/cdn/\(sha)"], body: [], method: request.method)
            return
        }
        for repository in repositories {
            for files in repository.commits.values {
                for (file, content) in files where SHA256Hasher.hex(of: content) == sha {
                    serveContent(fd, request: request, file: file, content: content, behaviour: behaviour, headers: [:])
                    return
                }
            }
        }
        respond(fd, status: 404, headers: [:], body: [], method: request.method)
    }

    /// The body of a file, honouring `Range: bytes=N-` and the misbehaviour switches.
    private func serveContent(_ fd: Int32, request: RecordedRequest, file: String, content: [UInt8],
                              behaviour: ServerBehaviour, headers: [String: String]) {
        var body = content
        if behaviour.corrupt.contains(file), !body.isEmpty { body[body.count / 2] ^= 0xff }
        var status = 200
        var headers = headers
        if !behaviour.ignoreRange, let range = request.headers["range"], range.hasPrefix("bytes="), range.hasSuffix("-"),
           let start = Int(range.dropFirst(6).dropLast()) {
            guard start < body.count else {
                respond(fd, status: 416, headers: ["Content-Range": "bytes */\(body.count)"], body: [], method: request.method)
                return
            }
            headers["Content-Range"] = "bytes \(start)-\(body.count - 1)/\(body.count)"
            status = 206
            body = Array(body[start...])
        }
        var cutAfter: Int?
        if request.method == "GET" {
            cutAfter = state.withLock { state -> Int? in
                let count = state.getCounts[file, default: 0]
                state.getCounts[file] = count + 1
                guard let interruption = behaviour.interruptions[file], count < interruption.times else { return nil }
                return interruption.afterBytes
            }
        }
        if let cutAfter, cutAfter < body.count {
            // Announce the whole body, send part of it, and hang up: an interrupted transfer.
            transmit(fd, head(status: status, headers: headers, contentLength: body.count) + Array(body[..<cutAfter]))
            return
        }
        respond(fd, status: status, headers: headers, body: body, method: request.method)
    }

    private func respond(_ fd: Int32, status: Int, headers: [String: String], body: [UInt8], method: String) {
        transmit(fd, head(status: status, headers: headers, contentLength: body.count) + (method == "HEAD" ? [] : body))
    }

    private func head(status: Int, headers: [String: String], contentLength: Int) -> [UInt8] {
        let reasons = [200: "OK", 206: "Partial Content", 302: "Found", 401: "Unauthorized", 404: "Not Found",
                       416: "Range Not Satisfiable"]
        var text = "HTTP/1.1 \(status) \(reasons[status] ?? "Status")\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(contentLength)\r\nConnection: close\r\n\r\n"
        return Array(text.utf8)
    }

    private func transmit(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a client that hangs up early must not kill the test process.
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    private func readRequest(_ fd: Int32) -> RecordedRequest? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while !Self.contains(data, terminator) {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0, data.count < 65536 else { return nil }
            data += buffer[..<count]
        }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return RecordedRequest(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers)
    }

    private static func contains(_ data: [UInt8], _ pattern: [UInt8]) -> Bool {
        guard data.count >= pattern.count else { return false }
        return (0...(data.count - pattern.count)).contains { data[$0..<($0 + pattern.count)].elementsEqual(pattern) }
    }

    // MARK: Hashes

    /// A 40-hex id standing in for the git blob id the hub uses as a small file's ETag.
    static func gitBlobID(_ bytes: [UInt8]) -> String {
        String(SHA256Hasher.hex(of: Array("blob \(bytes.count)\0".utf8) + bytes).prefix(40))
    }

    enum ServerError: Error {
        case socket(String)
    }
}
