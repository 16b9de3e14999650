import DinoHub
import Foundation
import Testing

@Suite("Hub model ids")
struct HubModelIDTests {
    @Test("valid ids parse into organisation, name and revision", arguments: [
        ("facebook/dinov2-with-registers-small", "facebook", "dinov2-with-registers-small", "main"),
        ("facebook/dinov2-small@v1.0", "facebook", "dinov2-small", "v1.0"),
        ("Org_1/Model.v2@refs/pr/12", "Org_1", "Model.v2", "refs/pr/12"),
        ("a/b@0123456789abcdef0123456789abcdef01234567", "a", "b", "0123456789abcdef0123456789abcdef01234567"),
    ])
    func accepts(text: String, organization: String, name: String, revision: String) throws {
        let id = try HubModelID(text)
        #expect(id.organization == organization)
        #expect(id.name == name)
        #expect(id.revision == revision)
        #expect(id.repository == "\(organization)/\(name)")
        #expect(try HubModelID(id.description) == id, "description round-trips")
        #expect(HubModelID.looksLikeHubID(text))
    }

    @Test("a commit revision is recognised as one")
    func commitRevision() throws {
        #expect(try HubModelID("a/b@0123456789abcdef0123456789abcdef01234567").revisionIsCommit)
        #expect(try !HubModelID("a/b@main").revisionIsCommit)
        #expect(try !HubModelID("a/b@0123456789abcdef").revisionIsCommit)
    }

    @Test("invalid ids are rejected with the reason", arguments: [
        "", "facebook", "a/b/c", "/a/b", "a/", "/b", "../x", "./x", "a/../b", ".hidden/model", "-org/model",
        "org/-model", "org/model.", "org/na..me", "org--x/model", "org/a--b", "org/mo del", "org/mödel",
        "org/model@", "org/model@../main", "org/model@/main", "org/model@main/", "org/model@a//b", "org/model@.",
        "org/model@a b", "org/model@a\\b", "org@main/model", String(repeating: "x", count: 97) + "/m",
    ])
    func rejects(text: String) {
        #expect(throws: HubError.self) { try HubModelID(text) }
        #expect(!HubModelID.looksLikeHubID(text))
        do {
            _ = try HubModelID(text)
        } catch {
            guard case .invalidModelID(let reported, let reason) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(reported == text)
            #expect(!reason.isEmpty)
        }
    }

    @Test("a path that exists on disk is a folder, not an id")
    func existingPathIsFolder() throws {
        // Any relative `dir/entry` path under the working directory whose parts are valid
        // names: it exists, so it must not be taken for an id.
        let fileManager = FileManager.default
        let candidates = try fileManager.contentsOfDirectory(atPath: ".").sorted().lazy.flatMap { folder in
            ((try? fileManager.contentsOfDirectory(atPath: folder)) ?? []).sorted().map { "\(folder)/\($0)" }
        }
        let existing = try #require(candidates.first { (try? HubModelID($0)) != nil })
        #expect(fileManager.fileExists(atPath: existing))
        #expect(!HubModelID.looksLikeHubID(existing))
        #expect(!HubModelID.looksLikeHubID(fileManager.currentDirectoryPath))
    }
}

@Suite("Defaults from the environment")
struct EnvironmentTests {
    @Test("cache root: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub")
    func cacheRoot() {
        let home = ["HOME": "/home/u"]
        #expect(HubCache.defaultRoot(environment: home.merging(["HF_HUB_CACHE": "/c/hub", "HF_HOME": "/h", "XDG_CACHE_HOME": "/x"]) { a, _ in a }).path == "/c/hub")
        #expect(HubCache.defaultRoot(environment: home.merging(["HF_HOME": "/h", "XDG_CACHE_HOME": "/x"]) { a, _ in a }).path == "/h/hub")
        #expect(HubCache.defaultRoot(environment: home.merging(["XDG_CACHE_HOME": "/x"]) { a, _ in a }).path == "/x/huggingface/hub")
        #expect(HubCache.defaultRoot(environment: home).path == "/home/u/.cache/huggingface/hub")
        #expect(HubCache.defaultRoot(environment: home.merging(["HF_HOME": "~/hf"]) { a, _ in a }).path == "/home/u/hf/hub")
        #expect(HubCache(environment: home.merging(["HF_HUB_CACHE": ""]) { a, _ in a }).root.path == "/home/u/.cache/huggingface/hub",
                "an empty variable counts as unset")
    }

    @Test("token: HF_TOKEN, then the token file in HF_HOME, else none")
    func token() throws {
        let folder = try TemporaryDirectory()
        #expect(HubClient.defaultToken(environment: ["HF_TOKEN": " hf_env\n", "HF_HOME": folder.url.path]) == "hf_env")
        #expect(HubClient.defaultToken(environment: ["HF_HOME": folder.url.path]) == nil)
        try Data("hf_file\n".utf8).write(to: folder.url.appendingPathComponent("token"))
        #expect(HubClient.defaultToken(environment: ["HF_HOME": folder.url.path]) == "hf_file")
        #expect(HubClient.defaultToken(environment: ["HOME": folder.url.path]) == nil)
    }

    @Test("offline: HF_HUB_OFFLINE in 1, ON, YES, TRUE (any case)")
    func offline() {
        for value in ["1", "ON", "yes", "True", " true "] {
            #expect(HubClient.defaultOffline(environment: ["HF_HUB_OFFLINE": value]), "\(value)")
        }
        for value in ["0", "off", "no", "false", ""] {
            #expect(!HubClient.defaultOffline(environment: ["HF_HUB_OFFLINE": value]), "\(value)")
        }
        #expect(!HubClient.defaultOffline(environment: [:]))
    }

    @Test("endpoint: HF_ENDPOINT without trailing slash, else huggingface.co")
    func endpoint() {
        #expect(HubClient.defaultEndpoint(environment: [:]).absoluteString == "https://huggingface.co")
        #expect(HubClient.defaultEndpoint(environment: ["HF_ENDPOINT": "http://mirror.example:8080/"]).absoluteString == "http://mirror.example:8080")
        #expect(HubClient.defaultEndpoint(environment: ["HF_ENDPOINT": "not a url"]).absoluteString == "https://huggingface.co")
    }
}
