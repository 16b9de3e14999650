import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The status and headers of an HTTP response, with case-insensitive header lookup.
struct HTTPResponseHead: Sendable {
    let status: Int
    private let headers: [String: String]

    init(_ response: HTTPURLResponse) {
        status = response.statusCode
        var headers: [String: String] = [:]
        for (name, value) in response.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        self.headers = headers
    }

    /// The header's value, trimmed, or nil when absent or empty.
    func header(_ name: String) -> String? {
        guard let value = headers[name.lowercased()]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }
}

/// The outcome of one HTTP exchange: the response head when one arrived, and the transport
/// error when the exchange did not finish normally.
struct HTTPOutcome {
    let response: HTTPResponseHead?
    let error: (any Error)?
}

/// Blocking HTTP on top of URLSession: one exchange at a time, streaming the body to a
/// callback instead of collecting it, with explicit control over redirects and credentials.
enum HTTPTransport {
    /// Performs `request` and waits for it to finish.
    ///
    /// - Parameters:
    ///   - followRedirects: when false, a 3xx response is returned as it is (the hub's HEAD
    ///     answers carry the file's metadata on the redirect itself).
    ///   - credentialOrigin: the only origin the `Authorization` header may be sent to; it is
    ///     removed from redirects that leave it, so the token never reaches a CDN.
    ///   - timeout: seconds without any data before the exchange fails.
    ///   - onResponse: sees the final response head; returning false cancels the body.
    ///   - onData: receives the body in order; returning false cancels the exchange.
    static func perform(
        _ request: URLRequest, followRedirects: Bool, credentialOrigin: URL, timeout: TimeInterval,
        onResponse: @escaping (HTTPResponseHead) -> Bool = { _ in true },
        onData: @escaping (Data) -> Bool = { _ in true }
    ) -> HTTPOutcome {
        let configuration = URLSessionConfiguration.ephemeral
        // Nothing of the exchange may be cached or replayed: the blobs are the cache.
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        // An idle timeout (reset whenever data arrives), so multi-gigabyte checkpoints on
        // slow links are not cut off; the resource timeout keeps its default of a week.
        configuration.timeoutIntervalForRequest = timeout
        let exchange = HTTPExchange(
            followRedirects: followRedirects, credentialOrigin: credentialOrigin,
            onResponse: onResponse, onData: onData)
        let session = URLSession(configuration: configuration, delegate: exchange, delegateQueue: nil)
        session.dataTask(with: request).resume()
        let outcome = exchange.wait()
        // The session keeps its delegate alive until invalidated.
        session.finishTasksAndInvalidate()
        return outcome
    }

    /// Whether two URLs share scheme, host and port, the boundary credentials must not cross.
    static func sameOrigin(_ a: URL, _ b: URL) -> Bool {
        func port(_ url: URL) -> Int? { url.port ?? (url.scheme?.lowercased() == "https" ? 443 : url.scheme?.lowercased() == "http" ? 80 : nil) }
        return a.scheme?.lowercased() == b.scheme?.lowercased() && a.host?.lowercased() == b.host?.lowercased() && port(a) == port(b)
    }
}

/// The URLSession delegate of one exchange.
private final class HTTPExchange: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: `response` and `error` are written only on the session's serial delegate
    // queue, and read by the waiting thread only after `finished` is signalled, which orders
    // the accesses.
    private let followRedirects: Bool
    private let credentialOrigin: URL
    private let onResponse: (HTTPResponseHead) -> Bool
    private let onData: (Data) -> Bool
    private let finished = DispatchSemaphore(value: 0)
    private var response: HTTPResponseHead?
    private var error: (any Error)?

    init(followRedirects: Bool, credentialOrigin: URL, onResponse: @escaping (HTTPResponseHead) -> Bool,
         onData: @escaping (Data) -> Bool) {
        self.followRedirects = followRedirects
        self.credentialOrigin = credentialOrigin
        self.onResponse = onResponse
        self.onData = onData
    }

    func wait() -> HTTPOutcome {
        finished.wait()
        return HTTPOutcome(response: response, error: error)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        guard followRedirects else {
            completionHandler(nil)
            return
        }
        var next = request
        if let url = next.url, !HTTPTransport.sameOrigin(url, credentialOrigin) {
            next.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse else {
            completionHandler(.cancel)
            return
        }
        let head = HTTPResponseHead(http)
        self.response = head
        completionHandler(onResponse(head) ? .allow : .cancel)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        if !onData(data) { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        self.error = error
        finished.signal()
    }
}
