import DinoHub
import Foundation
import Testing

/// Downloads from a local server that speaks the hub's protocol, into temporary caches.
@Suite("Hub downloads", .timeLimit(.minutes(1)))
struct HubDownloadTests {
    let id: HubModelID

    init() throws {
        id = try HubModelID(Fixtures.repositoryID)
    }

    /// Checks that `snapshots/{commit}/{file}` is a relative symlink to `blobs/{etag}` holding
    /// `content`.
    func expectLinked(_ file: String, content: [UInt8], in folder: URL, cache: HubCache, id: HubModelID) throws {
        let link = folder.appendingPathComponent(file)
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: link.path)
        let etag = Fixtures.etag(of: file, content: content)
        let depth = file.split(separator: "/").count - 1
        #expect(target == String(repeating: "../", count: 2 + depth) + "blobs/" + etag, "link of \(file)")
        let blob = cache.repositoryFolder(for: id).appendingPathComponent("blobs").appendingPathComponent(etag)
        #expect(link.resolvingSymlinksInPath().path == blob.resolvingSymlinksInPath().path, "\(file) resolves to its blob")
        #expect(try Array(Data(contentsOf: link)) == content, "content of \(file)")
    }

    func blobNames(_ cache: HubCache, _ id: HubModelID) -> [String] {
        let blobs = cache.repositoryFolder(for: id).appendingPathComponent("blobs")
        return ((try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? []).sorted()
    }

    func refContent(_ cache: HubCache, _ id: HubModelID, _ revision: String) -> String? {
        let ref = cache.repositoryFolder(for: id).appendingPathComponent("refs").appendingPathComponent(revision)
        return (try? Data(contentsOf: ref)).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("fresh download lays out refs, blobs and relative snapshot links", arguments: [LocationStyle.relative, .absolute])
    func freshDownload(style: LocationStyle) throws {
        let temporary = try TemporaryDirectory()
        var behaviour = ServerBehaviour()
        behaviour.locationStyle = style
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()], behaviour: behaviour)
        defer { server.stop() }
        let log = ProgressLog()
        let client = makeClient(server.endpoint, cache: temporary.cache, progress: { log.record($0) })

        let folder = try client.modelFolder(for: id)

        #expect(folder.standardizedFileURL == temporary.cache.snapshotFolder(for: id, commit: Fixtures.commitA).standardizedFileURL)
        #expect(refContent(temporary.cache, id, "main") == Fixtures.commitA)
        try expectLinked("config.json", content: Fixtures.configA, in: folder, cache: temporary.cache, id: id)
        try expectLinked("model.safetensors", content: Fixtures.weightsA, in: folder, cache: temporary.cache, id: id)
        try expectLinked("preprocessor_config.json", content: Fixtures.preprocessor, in: folder, cache: temporary.cache, id: id)
        let expectedBlobs = [
            Fixtures.etag(of: "config.json", content: Fixtures.configA),
            Fixtures.etag(of: "model.safetensors", content: Fixtures.weightsA),
            Fixtures.etag(of: "preprocessor_config.json", content: Fixtures.preprocessor),
        ].sorted()
        #expect(blobNames(temporary.cache, id) == expectedBlobs, "only complete blobs, named by etag")

        let requests = server.requests
        let heads = requests.filter { $0.method == "HEAD" }
        #expect(heads.count == 3)
        #expect(heads.first?.path == "/test-org/tiny-dino/resolve/main/config.json")
        // After the first answer, files are asked for by commit.
        #expect(heads.dropFirst().allSatisfy { $0.path.contains("/resolve/\(Fixtures.commitA)/") })
        for request in requests {
            #expect(request.headers["accept-encoding"] == "identity", "\(request.method) \(request.path)")
            #expect(request.headers["user-agent"]?.contains("DinoHub") == true)
            #expect(request.headers["authorization"] == nil, "no token configured")
        }
        let weightGets = requests.filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(weightGets.count == 1)
        #expect(weightGets.first?.path == "/cdn/\(SHA256Hasher.hex(of: Fixtures.weightsA))")

        let weightReports = log.all.filter { $0.fileName == "model.safetensors" }
        #expect(weightReports.last == HubProgress(fileName: "model.safetensors", bytesDone: 300_000, totalBytes: 300_000))
        #expect(weightReports.map(\.bytesDone) == weightReports.map(\.bytesDone).sorted())
    }

    @Test("a second run uses the cache: offline without any request, online without any GET")
    func secondRunUsesCache() throws {
        let temporary = try TemporaryDirectory()
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()])
        defer { server.stop() }
        let first = try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: id)
        let requestsAfterFirst = server.requests.count

        let offline = try makeClient(server.endpoint, cache: temporary.cache, offline: true).modelFolder(for: id)
        #expect(offline == first)
        #expect(server.requests.count == requestsAfterFirst, "offline makes no request")

        let online = try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: id)
        #expect(online == first)
        let second = server.requests.dropFirst(requestsAfterFirst)
        #expect(second.allSatisfy { $0.method == "HEAD" }, "blobs present: metadata only")
    }

    @Test("a cache laid out by Python's huggingface_hub is used offline")
    func pythonLayout() throws {
        let temporary = try TemporaryDirectory()
        let cache = temporary.cache
        let repository = cache.repositoryFolder(for: id)
        let fileManager = FileManager.default
        let snapshot = repository.appendingPathComponent("snapshots/\(Fixtures.commitA)")
        try fileManager.createDirectory(at: repository.appendingPathComponent("blobs"), withIntermediateDirectories: true)
        try fileManager.createDirectory(at: repository.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try fileManager.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try Data(Fixtures.commitA.utf8).write(to: repository.appendingPathComponent("refs/main"))
        for (file, content) in [("config.json", Fixtures.configA), ("model.safetensors", Fixtures.weightsA)] {
            let etag = Fixtures.etag(of: file, content: content)
            try Data(content).write(to: repository.appendingPathComponent("blobs/\(etag)"))
            try fileManager.createSymbolicLink(atPath: snapshot.appendingPathComponent(file).path,
                                               withDestinationPath: "../../blobs/\(etag)")
        }
        // Any request would fail the test.
        let refusing = try RefusingEndpoint()
        let unused = refusing.url

        let folder = try makeClient(unused, cache: cache, offline: true).modelFolder(for: id)

        #expect(folder.standardizedFileURL.path == snapshot.standardizedFileURL.path)
        #expect(try Array(Data(contentsOf: folder.appendingPathComponent("model.safetensors"))) == Fixtures.weightsA)
        #expect(try makeClient(unused, cache: cache, offline: true).modelFolder(for: try HubModelID("\(Fixtures.repositoryID)@\(Fixtures.commitA)")) == folder)
    }

    @Test("an interrupted transfer is resumed with Range and gives the right file")
    func resumesInterruptedTransfer() throws {
        let temporary = try TemporaryDirectory()
        var behaviour = ServerBehaviour()
        behaviour.interruptions = ["model.safetensors": (afterBytes: 100_000, times: 1)]
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()], behaviour: behaviour)
        defer { server.stop() }

        let folder = try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: id)

        try expectLinked("model.safetensors", content: Fixtures.weightsA, in: folder, cache: temporary.cache, id: id)
        let gets = server.requests.filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(gets.count == 2)
        #expect(gets.first?.headers["range"] == nil)
        #expect(gets.last?.headers["range"] == "bytes=100000-")
        #expect(!blobNames(temporary.cache, id).contains { $0.hasSuffix(".incomplete") })
    }

    @Test("a server that answers 200 to a Range request restarts the file from byte 0")
    func serverIgnoringRange() throws {
        let temporary = try TemporaryDirectory()
        var behaviour = ServerBehaviour()
        behaviour.interruptions = ["model.safetensors": (afterBytes: 70_000, times: 1)]
        behaviour.ignoreRange = true
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()], behaviour: behaviour)
        defer { server.stop() }

        let folder = try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: id)

        try expectLinked("model.safetensors", content: Fixtures.weightsA, in: folder, cache: temporary.cache, id: id)
        let gets = server.requests.filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(gets.map { $0.headers["range"] } == [nil, "bytes=70000-"])
    }

    @Test("after three interrupted attempts the error says so, and a later run resumes")
    func giveUpThenResume() throws {
        let temporary = try TemporaryDirectory()
        var behaviour = ServerBehaviour()
        behaviour.interruptions = ["model.safetensors": (afterBytes: 50_000, times: 100)]
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()], behaviour: behaviour)
        defer { server.stop() }
        let client = makeClient(server.endpoint, cache: temporary.cache)

        let error = expectHubError { () throws(HubError) in try client.modelFolder(for: id) }
        guard case .interruptedTransfer(let file, _, let received, let expected, let attempts) = error else {
            Issue.record("expected an interrupted transfer, got \(String(describing: error))")
            return
        }
        #expect(file == "model.safetensors")
        #expect(attempts == 3)
        #expect(received == 150_000)
        #expect(expected == 300_000)
        let sha = SHA256Hasher.hex(of: Fixtures.weightsA)
        #expect(blobNames(temporary.cache, id).contains("\(sha).incomplete"))
        #expect(!blobNames(temporary.cache, id).contains(sha))
        #expect(refContent(temporary.cache, id, "main") == nil, "the ref moves only when the snapshot is complete")

        server.setBehaviour { $0.interruptions = [:] }
        let folder = try client.modelFolder(for: id)
        try expectLinked("model.safetensors", content: Fixtures.weightsA, in: folder, cache: temporary.cache, id: id)
        let gets = server.requests.filter { $0.method == "GET" && $0.path.hasPrefix("/cdn/") }
        #expect(gets.map { $0.headers["range"] } == [nil, "bytes=50000-", "bytes=100000-", "bytes=150000-"])
    }

    @Test("corrupt content fails the checksum and leaves neither blob nor partial file")
    func checksumMismatch() throws {
        let temporary = try TemporaryDirectory()
        var behaviour = ServerBehaviour()
        behaviour.corrupt = ["model.safetensors"]
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()], behaviour: behaviour)
        defer { server.stop() }

        let error = expectHubError { () throws(HubError) in try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: id) }

        let sha = SHA256Hasher.hex(of: Fixtures.weightsA)
        guard case .checksumMismatch(let file, _, let expected, let actual) = error else {
            Issue.record("expected a checksum error, got \(String(describing: error))")
            return
        }
        #expect(file == "model.safetensors")
        #expect(expected == sha)
        #expect(actual != sha && actual.count == 64)
        #expect(error?.description.contains(sha) == true)
        #expect(!blobNames(temporary.cache, id).contains { $0.hasPrefix(sha) }, "no blob and no .incomplete")
        let link = temporary.cache.snapshotFolder(for: id, commit: Fixtures.commitA).appendingPathComponent("model.safetensors")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == nil, "no link to a missing blob")
    }

    @Test("401 names the repository and asks for HF_TOKEN")
    func unauthorized() throws {
        let temporary = try TemporaryDirectory()
        var behaviour = ServerBehaviour()
        behaviour.requiredToken = "hf_secret"
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()], behaviour: behaviour)
        defer { server.stop() }

        let error = expectHubError { () throws(HubError) in try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: id) }

        guard case .accessDenied(let repository, let status, _, let tokenSent) = error else {
            Issue.record("expected access denied, got \(String(describing: error))")
            return
        }
        #expect(repository == Fixtures.repositoryID)
        #expect(status == 401)
        #expect(!tokenSent)
        let message = error?.description ?? ""
        #expect(message.contains("HF_TOKEN") && message.contains(Fixtures.repositoryID) && message.contains("gated or private"))
    }

    @Test("the token goes to the endpoint as a Bearer header, and not to another host")
    func tokenSent() throws {
        let temporary = try TemporaryDirectory()
        var behaviour = ServerBehaviour()
        behaviour.requiredToken = "hf_secret"
        behaviour.cdnRedirectHost = "localhost"
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()], behaviour: behaviour)
        defer { server.stop() }

        let folder = try makeClient(server.endpoint, cache: temporary.cache, token: "hf_secret").modelFolder(for: id)

        try expectLinked("model.safetensors", content: Fixtures.weightsA, in: folder, cache: temporary.cache, id: id)
        let requests = server.requests
        let endpointRequests = requests.filter { $0.headers["host"]?.hasPrefix("127.0.0.1") == true }
        let otherHost = requests.filter { $0.headers["host"]?.hasPrefix("localhost") == true }
        #expect(!endpointRequests.isEmpty && !otherHost.isEmpty)
        for request in endpointRequests {
            #expect(request.headers["authorization"] == "Bearer hf_secret", "\(request.method) \(request.path)")
        }
        for request in otherHost {
            #expect(request.headers["authorization"] == nil, "\(request.method) \(request.path) on another host")
        }
    }

    @Test("a missing file, repository or revision is named in the error")
    func notFound() throws {
        let temporary = try TemporaryDirectory()
        var repository = Fixtures.plainRepository()
        repository.commits[Fixtures.commitA]?["config.json"] = nil
        let server = try TestHubServer(repositories: [repository])
        defer { server.stop() }
        let client = makeClient(server.endpoint, cache: temporary.cache)

        let missingFile = expectHubError { () throws(HubError) in try client.modelFolder(for: id) }
        guard case .fileNotFound(let repositoryID, let revision, let file, _) = missingFile else {
            Issue.record("expected file not found, got \(String(describing: missingFile))")
            return
        }
        #expect(repositoryID == Fixtures.repositoryID && revision == "main" && file == "config.json")
        #expect(missingFile?.description.contains("config.json") == true)

        let noRepository = expectHubError { () throws(HubError) in try client.modelFolder(for: try HubModelID("test-org/absent")) }
        #expect(noRepository == .repositoryNotFound(
            repository: "test-org/absent", url: "\(server.endpoint.absoluteString)/test-org/absent/resolve/main/config.json"))

        let noRevision = expectHubError { () throws(HubError) in try client.modelFolder(for: try HubModelID("\(Fixtures.repositoryID)@v9")) }
        guard case .revisionNotFound(_, "v9", _) = noRevision else {
            Issue.record("expected revision not found, got \(String(describing: noRevision))")
            return
        }
    }

    @Test("a sharded checkpoint: 404 for model.safetensors, then the index and every shard")
    func sharded() throws {
        let temporary = try TemporaryDirectory()
        let server = try TestHubServer(repositories: [Fixtures.shardedRepository()])
        defer { server.stop() }
        let shardedID = try HubModelID("test-org/sharded-dino")

        let folder = try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: shardedID)

        try expectLinked("config.json", content: Fixtures.configA, in: folder, cache: temporary.cache, id: shardedID)
        try expectLinked("model.safetensors.index.json", content: Fixtures.shardIndex, in: folder, cache: temporary.cache, id: shardedID)
        try expectLinked("model-00001-of-00002.safetensors", content: Fixtures.shard1, in: folder, cache: temporary.cache, id: shardedID)
        try expectLinked("model-00002-of-00002.safetensors", content: Fixtures.shard2, in: folder, cache: temporary.cache, id: shardedID)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path))
        // huggingface_hub's marker for "the hub said there is no such file at this commit".
        let marker = temporary.cache.repositoryFolder(for: shardedID)
            .appendingPathComponent(".no_exist/\(Fixtures.shardedCommit)/model.safetensors")
        #expect(FileManager.default.fileExists(atPath: marker.path))
        // The same snapshot is complete for offline use.
        #expect(try makeClient(server.endpoint, cache: temporary.cache, offline: true).modelFolder(for: shardedID) == folder)
    }

    @Test("a shard name that leaves the repository is refused")
    func unsafeShardName() throws {
        let temporary = try TemporaryDirectory()
        var repository = Fixtures.shardedRepository()
        let index = Array(#"{"weight_map": {"a": "../../../../evil.safetensors"}}"#.utf8)
        repository.commits[Fixtures.shardedCommit]?["model.safetensors.index.json"] = index
        let server = try TestHubServer(repositories: [repository])
        defer { server.stop() }

        let error = expectHubError { () throws(HubError) in
            try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: try HubModelID("test-org/sharded-dino"))
        }

        guard case .invalidIndex(let path, let reason) = error else {
            Issue.record("expected an invalid index, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("model.safetensors.index.json"))
        #expect(reason.contains("../../../../evil.safetensors"))
        #expect(!server.requests.contains { $0.path.contains("evil") })
    }

    @Test("offline with an empty cache names the cache path")
    func offlineEmptyCache() throws {
        let temporary = try TemporaryDirectory()
        let refusing = try RefusingEndpoint()
        let unused = refusing.url

        let error = expectHubError { () throws(HubError) in try makeClient(unused, cache: temporary.cache, offline: true).modelFolder(for: id) }

        let repositoryPath = temporary.cache.repositoryFolder(for: id).path
        #expect(error == .notInCache(repository: Fixtures.repositoryID, revision: "main", missing: "refs/main", cachePath: repositoryPath))
        #expect(error?.description.contains(repositoryPath) == true)
        #expect(error?.description.contains("not in the cache") == true)
    }

    @Test("revision by tag and by commit hash")
    func revisions() throws {
        let temporary = try TemporaryDirectory()
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()])
        defer { server.stop() }
        let client = makeClient(server.endpoint, cache: temporary.cache)

        let tagged = try HubModelID("\(Fixtures.repositoryID)@v1.0")
        let tagFolder = try client.modelFolder(for: tagged)
        #expect(tagFolder.lastPathComponent == Fixtures.commitB)
        #expect(refContent(temporary.cache, id, "v1.0") == Fixtures.commitB)
        try expectLinked("config.json", content: Fixtures.configB, in: tagFolder, cache: temporary.cache, id: tagged)
        try expectLinked("model.safetensors", content: Fixtures.weightsB, in: tagFolder, cache: temporary.cache, id: tagged)
        #expect(!FileManager.default.fileExists(atPath: tagFolder.appendingPathComponent("preprocessor_config.json").path))

        let pinned = try HubModelID("\(Fixtures.repositoryID)@\(Fixtures.commitA)")
        let commitFolder = try client.modelFolder(for: pinned)
        #expect(commitFolder.lastPathComponent == Fixtures.commitA)
        try expectLinked("config.json", content: Fixtures.configA, in: commitFolder, cache: temporary.cache, id: pinned)
        let refs = try FileManager.default.contentsOfDirectory(
            atPath: temporary.cache.repositoryFolder(for: id).appendingPathComponent("refs").path)
        #expect(refs == ["v1.0"], "no ref is written for a commit hash")
        #expect(server.requests.filter { $0.method == "HEAD" }.allSatisfy { !$0.path.contains("/resolve/main/") })
    }

    @Test("when the hub cannot be reached, a complete cached snapshot is used; otherwise the error names the URL")
    func networkFailure() throws {
        let temporary = try TemporaryDirectory()
        let server = try TestHubServer(repositories: [Fixtures.plainRepository()])
        let folder = try makeClient(server.endpoint, cache: temporary.cache).modelFolder(for: id)
        server.stop()
        let refusing = try RefusingEndpoint()
        let unreachable = refusing.url

        #expect(try makeClient(unreachable, cache: temporary.cache).modelFolder(for: id) == folder)

        let empty = try TemporaryDirectory()
        let error = expectHubError { () throws(HubError) in try makeClient(unreachable, cache: empty.cache).modelFolder(for: id) }
        guard case .network(let url, let reason) = error else {
            Issue.record("expected a network error, got \(String(describing: error))")
            return
        }
        #expect(url == "\(unreachable.absoluteString)/test-org/tiny-dino/resolve/main/config.json")
        #expect(!reason.isEmpty)
    }
}
